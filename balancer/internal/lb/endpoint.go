package lb

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/pickhint"
)

// successAlpha is the weight of one outcome in the success-rate average.
const successAlpha = 1.0 / 16

// pickGranularity: lastPick is rewritten at most this often (ns), to keep
// picks from writing a shared cache line on every call.
const pickGranularity = int64(1e6)

// Group is the state an endpoint shares with the other endpoints of its
// balancer: the configuration, the clock and the ejection budget.
type Group struct {
	cfg     atomic.Pointer[Config]
	clock   Clock
	name    string // the balancer's, for logs
	target  string
	members atomic.Int64 // endpoints holding a SubConn
	ejected atomic.Int64 // of which ejected
}

// NewGroup returns a group with cfg and clock (nil means SystemClock).
func NewGroup(cfg *Config, clock Clock) *Group {
	if clock == nil {
		clock = SystemClock
	}
	g := &Group{clock: clock}
	g.cfg.Store(cfg)
	return g
}

// Now reads the group's clock.
func (g *Group) Now() int64 { return g.clock() }

// Config returns the current configuration.
func (g *Group) Config() *Config { return g.cfg.Load() }

// Ejected returns how many endpoints are ejected now.
func (g *Group) Ejected() int64 { return g.ejected.Load() }

// Endpoint is one address's statistics and ejection state. Statistics live as
// long as the resolver lists the address, whatever happens to its SubConn or
// to the picker. All methods are safe for concurrent use.
type Endpoint struct {
	Addr string
	g    *Group

	weight   atomic.Uint32
	state    atomic.Int32 // connectivity.State of the SubConn; Shutdown when it has none
	conns    atomic.Int32 // ready SubConns (more than one with a pool)
	started  atomic.Int64 // picks
	ended    atomic.Int64 // Done calls; in flight = started - ended
	canceled atomic.Int64 // Done calls the caller had canceled
	// ewma packs the peak-EWMA latency (float32 bits of nanoseconds, high
	// half; 0 = unmeasured) and the millisecond of the last observation (low
	// half), so that one CAS updates both.
	ewma     atomic.Uint64
	success  atomic.Uint64 // float64 bits: success-rate EWMA
	lastPick atomic.Int64
	// unpicked is true until the first pick or ClaimFirst.
	unpicked atomic.Bool
	// ring holds reusable call records, so that a pick allocates nothing
	// unless more than len(ring) calls overlap on one slot.
	ring []callSlot

	consec       atomic.Int64
	winStart     atomic.Int64
	winCalls     atomic.Int64 // calls when the window started
	winFailures  atomic.Int64 // failures when the window started
	ejectedUntil atomic.Int64 // 0 when admitted
	probation    atomic.Bool
	times        atomic.Int64 // ejection multiplier
	readmitted   atomic.Int64 // when last readmitted
	ejections    atomic.Int64 // total
	failures     atomic.Int64
}

// NewEndpoint returns an endpoint of g with fresh statistics.
func NewEndpoint(g *Group, addr string, weight uint32) *Endpoint {
	e := &Endpoint{Addr: addr, g: g}
	e.weight.Store(weight)
	e.ring = make([]callSlot, ringSize)
	for i := range e.ring {
		c := &e.ring[i]
		c.done = func(di balancer.DoneInfo) {
			if cn := c.conn; cn != nil {
				c.conn = nil
				cn.inflight.Add(-1)
			}
			e.End(c.start.Swap(0), di.Err)
		}
	}
	e.state.Store(int32(connectivity.Shutdown))
	e.success.Store(math.Float64bits(1))
	e.unpicked.Store(true)
	now := g.clock()
	e.lastPick.Store(now)
	e.winStart.Store(now)
	return e
}

// Weight returns the endpoint's weight (≥ 1).
func (e *Endpoint) Weight() uint32 { return e.weight.Load() }

// State returns the connectivity state of the endpoint's SubConn (Shutdown
// when it has none).
func (e *Endpoint) State() connectivity.State { return connectivity.State(e.state.Load()) }

// Conns returns how many of the endpoint's connections are ready.
func (e *Endpoint) Conns() int { return int(e.conns.Load()) }

// InFlight returns the calls picked and not yet done.
func (e *Endpoint) InFlight() int64 {
	ended := e.ended.Load() // first: started only grows
	return e.started.Load() - ended
}

// Latency returns the peak-EWMA latency in nanoseconds (0 when unmeasured).
func (e *Endpoint) Latency() float64 {
	return float64(math.Float32frombits(uint32(e.ewma.Load() >> 32)))
}

// SuccessRate returns the success-rate average in [0, 1].
func (e *Endpoint) SuccessRate() float64 { return math.Float64frombits(e.success.Load()) }

// Ejections returns how many times the endpoint was ejected.
func (e *Endpoint) Ejections() int64 { return e.ejections.Load() }

// Calls returns how many calls ended on the endpoint, and how many failed.
func (e *Endpoint) Calls() (calls, failures int64) {
	failures = e.failures.Load()
	return e.ended.Load() - e.canceled.Load(), failures
}

// IsEjected reports whether the endpoint is ejected now.
func (e *Endpoint) IsEjected() bool { return e.ejectedUntil.Load() != 0 }

// Score is p2c's load estimate: latency × (in-flight + 1), divided by the
// weight and by the square of the success rate. Lower is better.
// Latencies below a microsecond (or none yet) count as one, so that
// in-flight calls decide between unmeasured endpoints.
func (e *Endpoint) Score() float64 {
	n, d := e.load()
	return n / d
}

// load returns the score's numerator (latency × (in-flight + 1)) and
// denominator (weight × success²).
func (e *Endpoint) load() (num, den float64) {
	c := e.Latency()
	if c < 1000 {
		c = 1000
	}
	sr := math.Float64frombits(e.success.Load())
	if sr < 0.01 {
		sr = 0.01
	}
	return c * float64(e.InFlight()+1), float64(e.weight.Load()) * sr * sr
}

// Less reports whether e's score is lower than o's, without dividing.
func (e *Endpoint) Less(o *Endpoint) bool {
	en, ed := e.load()
	on, od := o.load()
	return en*od < on*ed
}

// nearFactor is how close two scores must be for [Endpoint.Near].
const nearFactor = 1.1

// Near reports whether e's and o's scores are within 10% of each other:
// too close for the difference to mean anything, so that p2c may take
// either and equal endpoints share the calls evenly even one call at a time.
func (e *Endpoint) Near(o *Endpoint) bool {
	en, ed := e.load()
	on, od := o.load()
	a, b := en*od, on*ed
	return a <= b*nearFactor && b <= a*nearFactor
}

// Usable reports whether the endpoint may be picked at now: it is not
// ejected, or its ejection has ended, in which case it is readmitted on
// probation.
func (e *Endpoint) Usable(now int64) bool {
	u := e.ejectedUntil.Load()
	if u == 0 {
		return true
	}
	if now < u {
		return false
	}
	if e.ejectedUntil.CompareAndSwap(u, 0) {
		e.probation.Store(true)
		e.readmitted.Store(now)
		e.consec.Store(0)
		e.g.ejected.Add(-1)
		e.g.log(slog.LevelInfo, "balancer: endpoint readmitted on probation", e.Addr)
	}
	return true
}

// Unpicked reports whether the endpoint has never been picked.
func (e *Endpoint) Unpicked() bool { return e.unpicked.Load() }

// ClaimFirst claims the endpoint's first pick: only one caller sees true.
func (e *Endpoint) ClaimFirst() bool {
	return e.unpicked.Load() && e.unpicked.CompareAndSwap(true, false)
}

// Stale reports whether the endpoint has not been picked for interval, and
// claims the probe: only one caller sees true per interval.
func (e *Endpoint) Stale(now, interval int64) bool {
	last := e.lastPick.Load()
	return now-last > interval && e.lastPick.CompareAndSwap(last, now)
}

// ringSize is the number of call records per endpoint (a power of two).
const ringSize = 32

// callSlot is a reusable call record: start is the pick time while a call
// holds it, 0 when free.
type callSlot struct {
	start atomic.Int64
	conn  *Conn // the pool connection the call went to, if any; set by its holder
	done  func(balancer.DoneInfo)
}

// Pick records a pick at now of a call that goes to pool connection cn
// (nil for none; its in-flight count the pool already raised) and returns
// the function to call when the call is done, as balancer.PickResult.Done.
func (e *Endpoint) Pick(now int64, cn *Conn) func(balancer.DoneInfo) {
	n := e.started.Add(1)
	if e.unpicked.Load() {
		e.unpicked.Store(false)
	}
	if now-e.lastPick.Load() >= pickGranularity {
		e.lastPick.Store(now)
	}
	if c := &e.ring[n&(ringSize-1)]; now != 0 && c.start.CompareAndSwap(0, now) {
		c.conn = cn
		return c.done
	}
	if cn != nil {
		return func(di balancer.DoneInfo) { cn.inflight.Add(-1); e.End(now, di.Err) }
	}
	return func(di balancer.DoneInfo) { e.End(now, di.Err) }
}

// hinted wraps the Done function of a pick whose attempt carried h: if the
// attempt lost to another (h.Lost) and ended canceled, it is recorded as a
// success that took as long as it ran, a lower bound of the endpoint's
// latency, rather than ignored. It allocates; only hinted (hedged) attempts
// pay for it.
func hinted(h *pickhint.Hint, done func(balancer.DoneInfo)) func(balancer.DoneInfo) {
	return func(di balancer.DoneInfo) {
		if di.Err != nil && h.Lost() && status.Code(di.Err) == codes.Canceled {
			di.Err = nil
		}
		done(di)
	}
}

// Begin records a pick at now.
func (e *Endpoint) Begin(now int64) {
	e.started.Add(1)
	if e.unpicked.Load() {
		e.unpicked.Store(false)
	}
	if now-e.lastPick.Load() >= pickGranularity {
		e.lastPick.Store(now)
	}
}

// End records the end of a call picked at start that ended with err. A call
// that ended with Canceled (the caller gave up) changes nothing but the
// in-flight count; one that ended with DeadlineExceeded (the caller's
// deadline passed, or the server's) counts as a latency observation, never as
// a failure.
func (e *Endpoint) End(start int64, err error) {
	ended := e.ended.Add(1)
	code := codes.OK
	if err != nil {
		code = status.Code(err)
		if code == codes.Canceled {
			e.canceled.Add(1)
			return
		}
	}
	now := e.g.clock()
	calls := ended - e.canceled.Load()
	cfg := e.g.cfg.Load()
	failed := isFailure(code)
	if failed {
		e.failures.Add(1)
	} else {
		e.observe(now, float64(now-start), cfg.Decay)
	}
	if code == codes.DeadlineExceeded {
		return
	}
	e.observeOutcome(!failed)
	if cfg.Ejection.Disabled {
		return
	}
	e.judge(now, calls, failed, &cfg.Ejection)
}

// IsFailure reports whether err says the endpoint failed, rather than the
// call: Unavailable, Internal, Unknown, DataLoss and ResourceExhausted count;
// application errors, Canceled and DeadlineExceeded do not.
func IsFailure(err error) bool { return err != nil && isFailure(status.Code(err)) }

func isFailure(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.Internal, codes.Unknown, codes.DataLoss, codes.ResourceExhausted:
		return true
	}
	return false
}

// minStep is the least weight one observation has in the latency average, so
// that at high call rates the average follows the latency within a few dozen
// calls even when the decay time spans thousands.
const minStep = 1.0 / 32

// observe folds a latency into the peak-sensitive EWMA. A slower observation
// moves the average up at once, to the observation or to twice the average,
// whichever is lower: a backend that turns 10× slower is caught within four
// calls, while one outlier cannot make a fast backend look like a slow one. A
// faster observation pulls the average down with time constant decay (and
// at least minStep per call).
func (e *Endpoint) observe(now int64, rtt float64, decay time.Duration) {
	ms := uint32(now / 1e6)
	for {
		old := e.ewma.Load()
		c := float64(math.Float32frombits(uint32(old >> 32)))
		var nc float64
		switch {
		case c == 0:
			nc = rtt
		case rtt > c:
			nc = min(rtt, 2*c)
		default:
			w := 1 - minStep
			// Only a gap longer than decay/32 weighs more than minStep.
			if x := float64(ms-uint32(old)) * 1e6 / float64(decay); x > minStepX {
				w = math.Exp(-x)
			}
			nc = c*w + rtt*(1-w)
		}
		if e.ewma.CompareAndSwap(old, uint64(math.Float32bits(float32(nc)))<<32|uint64(ms)) {
			return
		}
	}
}

// minStepX is the gap, in decay times, whose decay weight equals minStep:
// -ln(1 - 1/32).
const minStepX = 0.0317486983145803

func (e *Endpoint) observeOutcome(ok bool) {
	x := 0.0
	if ok {
		x = 1
	}
	for {
		old := e.success.Load()
		s := math.Float64frombits(old)
		ns := s + (x-s)*successAlpha
		if ns == s || e.success.CompareAndSwap(old, math.Float64bits(ns)) {
			return
		}
	}
}

// judge applies the ejection rules to one outcome; calls is the endpoint's
// call count including this one.
func (e *Endpoint) judge(now, calls int64, failed bool, c *Ejection) {
	if failed {
		n := e.consec.Add(1)
		if e.probation.Load() || (c.ConsecutiveFailures > 0 && n >= c.ConsecutiveFailures) {
			e.eject(now, c)
			return
		}
	} else {
		if e.consec.Load() != 0 {
			e.consec.Store(0)
		}
		if e.probation.Load() {
			e.probation.Store(false)
		}
	}
	if c.FailureRate <= 0 {
		return
	}
	ws := e.winStart.Load()
	if now-ws < c.Interval.Nanoseconds() || !e.winStart.CompareAndSwap(ws, now) {
		return
	}
	failures := e.failures.Load()
	total := calls - e.winCalls.Swap(calls)
	fail := failures - e.winFailures.Swap(failures)
	if total >= c.MinRequests && float64(fail) >= c.FailureRate*float64(total) {
		e.eject(now, c)
	}
}

// eject takes the endpoint out for BaseEjectionTime × times ejected, capped
// at MaxEjectionTime, unless that would eject more than MaxEjectionPercent of
// the group.
func (e *Endpoint) eject(now int64, c *Ejection) {
	if e.ejectedUntil.Load() != 0 {
		return
	}
	n := e.g.ejected.Add(1)
	if (n-1)*100 >= c.MaxEjectionPercent*e.g.members.Load() {
		e.g.ejected.Add(-1)
		return
	}
	if r := e.readmitted.Load(); r != 0 && now-r > c.MaxEjectionTime.Nanoseconds() {
		e.times.Store(0) // behaved for long enough: start over
	}
	t := e.times.Add(1)
	d := c.BaseEjectionTime.Nanoseconds() * t
	if m := c.MaxEjectionTime.Nanoseconds(); d > m || d <= 0 {
		d = m
	}
	if !e.ejectedUntil.CompareAndSwap(0, now+d) {
		e.g.ejected.Add(-1)
		e.times.Add(-1)
		return
	}
	n = e.ejections.Add(1)
	e.probation.Store(false)
	e.consec.Store(0)
	e.g.log(slog.LevelWarn, "balancer: endpoint ejected", e.Addr,
		slog.Duration("ejection", time.Duration(d)), slog.Int64("ejections", n))
}

// log writes an ejection event to slog.Default (a balancer is built by gRPC
// from its name and cannot be handed a logger).
func (g *Group) log(level slog.Level, msg, addr string, attrs ...slog.Attr) {
	l := slog.Default()
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	l.LogAttrs(ctx, level, msg, append([]slog.Attr{slog.String("grpc.lb_policy", g.name),
		slog.String("grpc.target", g.target), slog.String("peer.address", addr)}, attrs...)...)
}

// release undoes the endpoint's share of the group when it loses its
// SubConn or leaves.
func (e *Endpoint) release() {
	for {
		u := e.ejectedUntil.Load()
		if u == 0 {
			return
		}
		if e.ejectedUntil.CompareAndSwap(u, 0) {
			e.g.ejected.Add(-1)
			return
		}
	}
}

// Group returns the endpoint's group.
func (e *Endpoint) Group() *Group { return e.g }
