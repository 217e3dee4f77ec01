package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/clock"
	"github.com/grpckit/grpckit/internal/promreg"
)

// Message is the status message of a call the breaker or throttle rejected.
const Message = "circuit breaker open"

// Defaults.
const (
	// DefaultThreshold is how many consecutive failures open a breaker.
	DefaultThreshold = 5
	// DefaultTimeout is how long a breaker stays open before it lets probes through.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxRequests is how many probes a half-open breaker lets through;
	// as many successes close it.
	DefaultMaxRequests = 1
	// DefaultMaxKeys bounds the breakers of one [Breakers]; keys beyond it
	// share one breaker.
	DefaultMaxKeys = 1000
	// DefaultK is the throttle's multiplier: a failing backend still gets
	// about K times the calls it accepts.
	DefaultK = 2.0
	// DefaultWindow is the throttle's sliding window.
	DefaultWindow = 2 * time.Minute
	// DefaultMinBudget is the least time a call must have had before its
	// deadline for a DeadlineExceeded of the caller's own deadline to count
	// as a failure (see [WithMinBudget]).
	DefaultMinBudget = time.Second
)

// DefaultFailureCodes returns the codes that count as failures by default:
// Unavailable and DeadlineExceeded, the signs that the backend or the path
// to it, not the request, is in trouble. It returns a new slice each time.
func DefaultFailureCodes() []codes.Code {
	return []codes.Code{codes.Unavailable, codes.DeadlineExceeded}
}

// ErrRejected matches, with errors.Is, every call rejected by a breaker or
// throttle of this package.
var ErrRejected = errors.New("breaker: call rejected")

// ErrInvalid is wrapped by the errors of invalid option values.
var ErrInvalid = errors.New("breaker: invalid option")

// rejection is the error of a rejected call: a gRPC status (Unavailable)
// that matches ErrRejected. One value serves every rejection.
type rejection struct{ st *status.Status }

func (r *rejection) Error() string              { return "rpc error: code = Unavailable desc = " + Message }
func (r *rejection) GRPCStatus() *status.Status { return r.st }
func (r *rejection) Is(target error) bool       { return target == ErrRejected }

var errRejected error = &rejection{st: status.New(codes.Unavailable, Message)}

// Option configures [New] and [NewThrottle]; each says which it applies to.
type Option func(*config)

type config struct {
	threshold   uint32
	readyToTrip func(gobreaker.Counts) bool
	timeout     time.Duration
	interval    time.Duration
	maxRequests uint32
	failure     [codes.Unauthenticated + 1]bool
	failureSet  bool
	key         func(method string) string
	maxKeys     int
	now         clock.Clock
	rand        func() float64
	logger      *slog.Logger
	reg         prometheus.Registerer
	onChange    func(key string, from, to gobreaker.State)
	k           float64
	window      time.Duration
	minBudget   time.Duration
	errs        []error
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

// WithThreshold opens a breaker after n consecutive failures (n >= 1).
// Breaker only. Default: [DefaultThreshold].
func WithThreshold(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.invalid("WithThreshold(%d): want n >= 1", n)
			return
		}
		c.threshold = uint32(n)
	}
}

// WithReadyToTrip replaces the threshold with gobreaker's ReadyToTrip: it
// is called with the counts after each failure in the closed state, and
// opens the breaker when it returns true. Breaker only. Default: open after
// [WithThreshold] consecutive failures.
func WithReadyToTrip(f func(gobreaker.Counts) bool) Option {
	return func(c *config) { c.readyToTrip = f }
}

// WithTimeout sets how long a breaker stays open before it lets probes
// through. Breaker only. Default: [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.invalid("WithTimeout(%v): want d > 0", d)
			return
		}
		c.timeout = d
	}
}

// WithInterval clears a closed breaker's counts every d, as gobreaker's
// Interval does; it costs one clock read per call. Breaker only. Default: 0,
// counts are cleared only on state changes (consecutive counts reset on
// every success or failure anyway).
func WithInterval(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.invalid("WithInterval(%v): want d >= 0", d)
			return
		}
		c.interval = d
	}
}

// WithMaxRequests sets how many probes a half-open breaker lets through;
// as many consecutive successes close it. Breaker only. Default:
// [DefaultMaxRequests].
func WithMaxRequests(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.invalid("WithMaxRequests(%d): want n >= 1", n)
			return
		}
		c.maxRequests = uint32(n)
	}
}

// WithFailureCodes sets the status codes that count as failures; other
// codes count as successes (the server answered). OK and Canceled (the
// caller's own doing) are refused. Whatever the codes, a call that failed
// because the caller's own context ended is not counted (see the package
// doc). Default: [DefaultFailureCodes]; the throttle adds ResourceExhausted
// to the default.
func WithFailureCodes(cs ...codes.Code) Option {
	return func(c *config) {
		c.failure = [codes.Unauthenticated + 1]bool{}
		for _, code := range cs {
			if code == codes.OK || code == codes.Canceled || code > codes.Unauthenticated {
				c.invalid("WithFailureCodes: %v cannot count as a failure", code)
				continue
			}
			c.failure[code] = true
		}
		c.failureSet = true
	}
}

// WithMinBudget sets the least time a call must have had before its
// deadline, when it started, for a DeadlineExceeded to count as a failure:
// a backend that cannot answer within d is failing; a call sent with less
// than d left (a tight deadline, the last attempt of a retried call) failed
// on the caller's budget and is not counted, whether the client or the
// server (which inherits the deadline) noticed first. A call without a
// deadline always has the budget. 0 counts every call that had time left
// when it started. Default: [DefaultMinBudget].
func WithMinBudget(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.invalid("WithMinBudget(%v): want d >= 0", d)
			return
		}
		c.minBudget = d
	}
}

// WithKey maps a full method name to the breaker that guards it. Breaker
// only. Default: one breaker per method ([ByMethod]).
func WithKey(f func(method string) string) Option {
	return func(c *config) {
		if f == nil {
			c.invalid("WithKey(nil)")
			return
		}
		c.key = f
	}
}

// ByMethod keys breakers by full method name.
func ByMethod(method string) string { return method }

// ByService keys breakers by service: "/pkg.Svc/Method" → "/pkg.Svc".
func ByService(method string) string {
	for i := len(method) - 1; i > 0; i-- {
		if method[i] == '/' {
			return method[:i]
		}
	}
	return method
}

// WithMaxKeys bounds the number of breakers; keys beyond it share one.
// Breaker only. Default: [DefaultMaxKeys].
func WithMaxKeys(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.invalid("WithMaxKeys(%d): want n >= 1", n)
			return
		}
		c.maxKeys = n
	}
}

// withClock sets the clock, for tests. Default: the runtime's monotonic clock.
func withClock(now func() time.Time) Option {
	return func(c *config) { c.now = clock.FromTime(now) }
}

// withRand sets the throttle's source of uniform numbers in [0, 1), for
// tests. Throttle only. Default: math/rand/v2.Float64.
func withRand(f func() float64) Option {
	return func(c *config) { c.rand = f }
}

// WithLogger sets the logger of state changes. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithRegisterer exports the metrics (see the package doc) on r. Default:
// no metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) { c.reg = r }
}

// WithOnStateChange calls f after every breaker state change, outside any
// lock. Breaker only. Default: none.
func WithOnStateChange(f func(key string, from, to gobreaker.State)) Option {
	return func(c *config) { c.onChange = f }
}

// WithK sets the throttle's multiplier (K >= 1): lower is more aggressive.
// Throttle only. Default: [DefaultK].
func WithK(k float64) Option {
	return func(c *config) {
		if !(k >= 1) {
			c.invalid("WithK(%v): want K >= 1", k)
			return
		}
		c.k = k
	}
}

// WithWindow sets the throttle's sliding window, made of 16 buckets whose
// span is rounded up to a power of two nanoseconds (the default window is
// thus about 137 s). Throttle only. Default: [DefaultWindow].
func WithWindow(d time.Duration) Option {
	return func(c *config) {
		if d < numBuckets*time.Millisecond {
			c.invalid("WithWindow(%v): want d >= 16ms", d)
			return
		}
		c.window = d
	}
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		threshold:   DefaultThreshold,
		timeout:     DefaultTimeout,
		maxRequests: DefaultMaxRequests,
		key:         ByMethod,
		maxKeys:     DefaultMaxKeys,
		now:         clock.Real,
		logger:      slog.Default(),
		k:           DefaultK,
		window:      DefaultWindow,
		minBudget:   DefaultMinBudget,
	}
	for _, code := range DefaultFailureCodes() {
		c.failure[code] = true
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c, errors.Join(c.errs...)
}

// outcome classifies a call's error.
type outcome uint8

const (
	success outcome = iota
	failure
	excluded
)

// classify judges a call by its error and its context: ctx is the call's
// context, checked only when the call failed, and long whether the call had
// at least the minimum budget before its deadline when it started.
func (c *config) classify(ctx context.Context, err error, long bool) outcome {
	if err == nil {
		return success
	}
	code := status.Code(err)
	if code == codes.Canceled {
		return excluded
	}
	if code == codes.DeadlineExceeded && !long {
		// The caller's deadline was too tight to judge the backend by;
		// the server's deadline derives from it (gRPC propagates it), so
		// this holds whichever side noticed first.
		return excluded
	}
	if cerr := ctx.Err(); cerr != nil && (code != codes.DeadlineExceeded || cerr != context.DeadlineExceeded) {
		// The caller's context ended (cancelled, or its deadline with a
		// code other than DeadlineExceeded): the caller decided the call,
		// not the backend.
		return excluded
	}
	if code > codes.Unauthenticated {
		code = codes.Unknown
	}
	if c.failure[code] {
		return failure
	}
	return success
}

// longBudget reports whether a call starting now with ctx has at least
// the minimum budget before its deadline (always, without a deadline: a
// DeadlineExceeded is then the server's own). It reads the clock only for
// a context with a deadline.
func (c *config) longBudget(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	if !ok {
		return true
	}
	left := time.Until(dl)
	return left > 0 && left >= c.minBudget
}

// Policy decides, call by call, whether a call may be sent. [*Breakers] and
// [*Throttle] are the policies; the interceptors take either.
type Policy interface {
	admit(method string) (ticket, error)
	done(t ticket, o outcome)
	config() *config
}

// ticket carries what completion needs from admission, without allocating.
type ticket struct {
	cb   *cb
	word uint64
}

// UnaryClientInterceptor rejects calls p refuses with codes.Unavailable
// ([ErrRejected]) and reports the outcome of the others to p.
func UnaryClientInterceptor(p Policy) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		t, err := p.admit(method)
		if err != nil {
			return err
		}
		cfg := p.config()
		long := cfg.longBudget(ctx)
		if connReady(cc) {
			err = invoker(ctx, method, req, reply, cc, opts...)
			p.done(t, cfg.classify(ctx, err, long))
			return err
		}
		// No ready connection at the start (a new connection, or none
		// to be had): learn whether the call reached a backend. grpc-go
		// fills the peer only for a call that was given a transport.
		var pr peer.Peer
		err = invoker(ctx, method, req, reply, cc, append(opts[:len(opts):len(opts)], grpc.Peer(&pr))...)
		o := cfg.classify(ctx, err, long)
		if o == failure && pr.Addr == nil {
			o = excluded
		}
		p.done(t, o)
		return err
	}
}

// connReady reports whether cc had a ready connection when a call started.
func connReady(cc *grpc.ClientConn) bool {
	return cc == nil || cc.GetState() == connectivity.Ready
}

// A failure of a call that started while the connection had no ready
// backend is excluded unless the call reached one: such a call fails in
// gRPC itself (at once, or at its deadline with WaitForReady), and counting
// it would keep the breaker open for its whole timeout after the connection
// comes back, for example when a client starts while its registry is down.
// A call that started on a ready connection counts, also when the backend
// dies under it, and so does one that reached a backend (the first calls
// of a new connection start while it connects). Unary calls learn whether
// they reached a backend from grpc.Peer (asked for only when the
// connection was not ready at the start: the connection's state can lag
// behind its picker); streams, judged when they open, from the
// connection's state at their end.

// judge is p's verdict on an opened or failed stream, with the exclusion
// above.
func judge(ctx context.Context, p Policy, cc *grpc.ClientConn, readyAtStart, long bool, err error) outcome {
	o := p.config().classify(ctx, err, long)
	if o == failure && !readyAtStart && !connReady(cc) {
		return excluded
	}
	return o
}

// StreamClientInterceptor rejects streams p refuses with codes.Unavailable
// ([ErrRejected]); an admitted stream is judged by its establishment (see
// the package doc).
func StreamClientInterceptor(p Policy) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		t, err := p.admit(method)
		if err != nil {
			return nil, err
		}
		ready, long := connReady(cc), p.config().longBudget(ctx)
		s, err := streamer(ctx, desc, cc, method, opts...)
		p.done(t, judge(ctx, p, cc, ready, long, err))
		return s, err
	}
}

// Breakers is a set of circuit breakers for one target, one per key
// (method by default). It is safe for concurrent use.
type Breakers struct {
	cfg               *config
	target            string
	timeout, interval int64

	mu       sync.Mutex                     // guards inserts
	m        atomic.Pointer[map[string]*cb] // copy on write
	overflow *cb

	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	rejected    *prometheus.CounterVec
}

// New returns the breakers for calls to target (used in logs and metric
// labels).
func New(target string, opts ...Option) (*Breakers, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.readyToTrip == nil {
		n := cfg.threshold
		cfg.readyToTrip = func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= n }
	}
	b := &Breakers{cfg: cfg, target: target, timeout: int64(cfg.timeout), interval: int64(cfg.interval)}
	if cfg.reg != nil {
		b.state = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "grpckit_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
		}, []string{"target", "key"})
		b.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_breaker_transitions_total",
			Help: "Circuit breaker state changes.",
		}, []string{"target", "key", "from", "to"})
		b.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_breaker_rejected_total",
			Help: "Calls rejected by a circuit breaker without being sent.",
		}, []string{"target", "key"})
		if b.state, err = register(cfg.reg, b.state); err != nil {
			return nil, err
		}
		if b.transitions, err = register(cfg.reg, b.transitions); err != nil {
			return nil, err
		}
		if b.rejected, err = register(cfg.reg, b.rejected); err != nil {
			return nil, err
		}
	}
	m := map[string]*cb{}
	b.m.Store(&m)
	b.overflow = b.newCB("overflow")
	return b, nil
}

// register registers c on r, or returns the collector already registered
// under the same description.
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	c, err := promreg.Register(r, c)
	if err != nil {
		return c, fmt.Errorf("breaker: register metrics: %w", err)
	}
	return c, nil
}

func (b *Breakers) newCB(key string) *cb {
	c := &cb{b: b, key: key}
	if b.interval > 0 {
		c.intervalEnd.Store(b.cfg.now() + b.interval)
	}
	if b.rejected != nil {
		c.rejected = b.rejected.WithLabelValues(b.target, key)
		b.state.WithLabelValues(b.target, key).Set(0)
	}
	return c
}

// get returns the breaker for key, creating it if needed.
func (b *Breakers) get(key string) *cb {
	if c, ok := (*b.m.Load())[key]; ok {
		return c
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.m.Load()
	if c, ok := old[key]; ok {
		return c
	}
	if len(old) >= b.cfg.maxKeys {
		return b.overflow
	}
	m := make(map[string]*cb, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	c := b.newCB(key)
	m[key] = c
	b.m.Store(&m)
	return c
}

// State returns the state of the breaker for key (closed if it has not
// been used).
func (b *Breakers) State(key string) gobreaker.State {
	c, ok := (*b.m.Load())[key]
	if !ok {
		return gobreaker.StateClosed
	}
	return c.state()
}

// States returns the state of every breaker, by key (for admin pages).
func (b *Breakers) States() map[string]gobreaker.State {
	m := *b.m.Load()
	out := make(map[string]gobreaker.State, len(m))
	for k, c := range m {
		out[k] = c.state()
	}
	return out
}

// Status is one breaker as [Breakers.Snapshot] sees it.
type Status struct {
	// Key is the breaker's key (the method, by default).
	Key string `json:"key"`
	// State is "closed", "half-open" or "open".
	State string `json:"state"`
	// Requests, Successes, Failures and Exclusions count the calls in the
	// current state (or interval, when closed with WithInterval);
	// ConsecutiveFailures is the current run of failures.
	Requests            uint32 `json:"requests"`
	Successes           uint32 `json:"successes"`
	Failures            uint32 `json:"failures"`
	Exclusions          uint32 `json:"exclusions"`
	ConsecutiveFailures uint32 `json:"consecutiveFailures"`
	// Rejected counts the calls it rejected since it was created.
	Rejected int64 `json:"rejected"`
	// Transitions are its latest state changes, oldest first (at most 32).
	Transitions []Transition `json:"transitions"`
}

// Transition is a breaker's change of state.
type Transition struct {
	Time time.Time `json:"time"`
	From string    `json:"from"`
	To   string    `json:"to"`
}

// stateName spells a state in lower case, as the admin page shows it.
func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateClosed:
		return "closed"
	case gobreaker.StateHalfOpen:
		return "half-open"
	default:
		return "open"
	}
}

// Snapshot returns every breaker's state, counts and recent transitions,
// ordered by key, for admin pages. Breakers over WithMaxKeys share one,
// listed under the key "overflow" once used.
func (b *Breakers) Snapshot() []Status {
	m := *b.m.Load()
	cbs := make([]*cb, 0, len(m)+1)
	for _, c := range m {
		cbs = append(cbs, c)
	}
	if b.overflow.nRejects.Load() > 0 || b.overflow.word.Load() != 0 || b.overflow.requests.Load() > 0 {
		cbs = append(cbs, b.overflow)
	}
	out := make([]Status, 0, len(cbs))
	for _, c := range cbs {
		n := c.counts()
		st := Status{Key: c.key, State: stateName(c.state()), Requests: n.Requests, Successes: n.TotalSuccesses,
			Failures: n.TotalFailures, Exclusions: n.TotalExclusions, ConsecutiveFailures: n.ConsecutiveFailures,
			Rejected: c.nRejects.Load(), Transitions: []Transition{}}
		c.mu.Lock()
		for i := max(0, c.nHistory-historyLen); i < c.nHistory; i++ {
			st.Transitions = append(st.Transitions, c.history[i%historyLen])
		}
		c.mu.Unlock()
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Counts returns the counts of the breaker for key in its current state.
func (b *Breakers) Counts(key string) gobreaker.Counts {
	c, ok := (*b.m.Load())[key]
	if !ok {
		return gobreaker.Counts{}
	}
	return c.counts()
}

func (b *Breakers) admit(method string) (ticket, error) {
	return b.get(b.cfg.key(method)).admit()
}

func (b *Breakers) done(t ticket, o outcome) { t.cb.done(t.word, o) }

func (b *Breakers) config() *config { return b.cfg }

// cb is one circuit breaker. word holds generation<<2 | state.
type cb struct {
	b   *Breakers
	key string

	word        atomic.Uint64
	openUntil   atomic.Int64 // open: when probes may start
	intervalEnd atomic.Int64 // closed with an interval: when counts clear

	requests, totalSucc, totalFail, totalExcl, consecSucc, consecFail atomic.Uint32

	mu       sync.Mutex // serializes transitions
	rejected prometheus.Counter
	nRejects atomic.Int64
	history  [historyLen]Transition // guarded by mu; a ring
	nHistory int                    // transitions recorded, guarded by mu
}

// historyLen is how many state changes a breaker keeps for Snapshot.
const historyLen = 32

func stateOf(w uint64) gobreaker.State { return gobreaker.State(w & 3) }

func (c *cb) state() gobreaker.State {
	w := c.word.Load()
	if stateOf(w) == gobreaker.StateOpen && c.b.cfg.now() >= c.openUntil.Load() {
		return gobreaker.StateHalfOpen
	}
	return stateOf(w)
}

func (c *cb) counts() gobreaker.Counts {
	return gobreaker.Counts{
		Requests:             c.requests.Load(),
		TotalSuccesses:       c.totalSucc.Load(),
		TotalFailures:        c.totalFail.Load(),
		TotalExclusions:      c.totalExcl.Load(),
		ConsecutiveSuccesses: c.consecSucc.Load(),
		ConsecutiveFailures:  c.consecFail.Load(),
	}
}

func (c *cb) reject() (ticket, error) {
	c.nRejects.Add(1)
	if c.rejected != nil {
		c.rejected.Inc()
	}
	return ticket{}, errRejected
}

func (c *cb) admit() (ticket, error) {
	for {
		w := c.word.Load()
		switch stateOf(w) {
		case gobreaker.StateClosed:
			if c.b.interval > 0 {
				if now := c.b.cfg.now(); now >= c.intervalEnd.Load() {
					c.transition(w, gobreaker.StateClosed, now)
					continue
				}
			}
			c.requests.Add(1)
			return ticket{cb: c, word: w}, nil
		case gobreaker.StateHalfOpen:
			n := c.requests.Load()
			if n >= c.b.cfg.maxRequests {
				return c.reject()
			}
			if c.requests.CompareAndSwap(n, n+1) {
				return ticket{cb: c, word: w}, nil
			}
		default: // open
			now := c.b.cfg.now()
			if now < c.openUntil.Load() {
				return c.reject()
			}
			c.transition(w, gobreaker.StateHalfOpen, now)
		}
	}
}

func (c *cb) done(w uint64, o outcome) {
	if c.word.Load() != w {
		return // a call of an earlier generation
	}
	switch o {
	case excluded:
		c.totalExcl.Add(1)
		if stateOf(w) == gobreaker.StateHalfOpen {
			c.requests.Add(^uint32(0)) // let another probe through
		}
	case success:
		c.totalSucc.Add(1)
		n := c.consecSucc.Add(1)
		if c.consecFail.Load() != 0 {
			c.consecFail.Store(0)
		}
		if stateOf(w) == gobreaker.StateHalfOpen && n >= c.b.cfg.maxRequests {
			c.transition(w, gobreaker.StateClosed, c.b.cfg.now())
		}
	case failure:
		c.totalFail.Add(1)
		c.consecFail.Add(1)
		if c.consecSucc.Load() != 0 {
			c.consecSucc.Store(0)
		}
		if stateOf(w) == gobreaker.StateHalfOpen || c.b.cfg.readyToTrip(c.counts()) {
			c.transition(w, gobreaker.StateOpen, c.b.cfg.now())
		}
	}
}

// transition moves the breaker from word w to state to, unless another
// goroutine moved it first. Closed → closed starts a new interval.
func (c *cb) transition(w uint64, to gobreaker.State, now int64) {
	c.mu.Lock()
	if c.word.Load() != w {
		c.mu.Unlock()
		return
	}
	for _, a := range []*atomic.Uint32{&c.requests, &c.totalSucc, &c.totalFail, &c.totalExcl, &c.consecSucc, &c.consecFail} {
		a.Store(0)
	}
	switch to {
	case gobreaker.StateOpen:
		c.openUntil.Store(now + c.b.timeout)
	case gobreaker.StateClosed:
		if c.b.interval > 0 {
			c.intervalEnd.Store(now + c.b.interval)
		}
	}
	c.word.Store((w>>2+1)<<2 | uint64(to))
	from := stateOf(w)
	if from != to {
		c.history[c.nHistory%historyLen] = Transition{Time: time.Now(), From: stateName(from), To: stateName(to)}
		c.nHistory++
	}
	c.mu.Unlock()

	if from == to {
		return
	}
	b := c.b
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	b.cfg.logger.LogAttrs(context.Background(), level, "circuit breaker state change",
		slog.String("grpc.target", b.target), slog.String("breaker.key", c.key),
		slog.String("breaker.from", from.String()), slog.String("breaker.to", to.String()))
	if b.state != nil {
		b.state.WithLabelValues(b.target, c.key).Set(float64(to))
		b.transitions.WithLabelValues(b.target, c.key, from.String(), to.String()).Inc()
	}
	if b.cfg.onChange != nil {
		b.cfg.onChange(c.key, from, to)
	}
}
