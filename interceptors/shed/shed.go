package shed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/clock"
)

// Message is the status message of a shed call.
const Message = "server overloaded"

// Defaults.
const (
	// DefaultWindow is the span of the sliding window.
	DefaultWindow = 10 * time.Second
	// DefaultBuckets is the number of buckets of the window.
	DefaultBuckets = 100
	// DefaultMinLimit is the lowest in-flight limit the shedder enforces,
	// so that a server with little traffic is never starved by a small
	// estimate.
	DefaultMinLimit = 8
	// DefaultCPUThreshold is the CPU usage above which a CPU-gated shedder
	// sheds.
	DefaultCPUThreshold = 0.8
	// cooldown keeps a CPU-gated shedder shedding after a rejection.
	cooldown = int64(time.Second)
)

// ErrInvalid is wrapped by the errors of invalid option values.
var ErrInvalid = errors.New("shed: invalid option")

var errShed = status.Error(codes.ResourceExhausted, Message)

// Option configures [New].
type Option func(*config)

type config struct {
	window    time.Duration
	buckets   int
	minLimit  int64
	cpu       func() float64
	threshold float64
	now       clock.Clock
	reg       prometheus.Registerer
	errs      []error
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

// WithWindow sets the sliding window's span and number of buckets.
// Default: [DefaultWindow] in [DefaultBuckets] buckets.
func WithWindow(d time.Duration, buckets int) Option {
	return func(c *config) {
		if buckets < 2 || d < time.Duration(buckets)*time.Millisecond {
			c.invalid("WithWindow(%v, %d): want at least 2 buckets of at least 1ms", d, buckets)
			return
		}
		c.window, c.buckets = d, buckets
	}
}

// WithMinLimit sets the lowest in-flight limit enforced. Default:
// [DefaultMinLimit].
func WithMinLimit(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.invalid("WithMinLimit(%d): want n >= 1", n)
			return
		}
		c.minLimit = int64(n)
	}
}

// WithCPU gates shedding on a CPU signal: usage returns the CPU usage in
// [0, 1] (such as [CPUSampler.Usage]); calls are shed only while it is at
// least threshold, or within a second of the last shed call. Default: no
// CPU signal, in-flight calls alone decide.
func WithCPU(usage func() float64, threshold float64) Option {
	return func(c *config) {
		if usage == nil || !(threshold > 0 && threshold <= 1) {
			c.invalid("WithCPU: want a usage func and 0 < threshold <= 1")
			return
		}
		c.cpu, c.threshold = usage, threshold
	}
}

// withClock sets the clock, for tests. Default: the runtime's monotonic clock.
func withClock(now func() time.Time) Option {
	return func(c *config) { c.now = clock.FromTime(now) }
}

// WithRegisterer exports grpckit_shed_rejected_total, grpckit_shed_inflight
// and grpckit_shed_limit on r. Default: no metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) { c.reg = r }
}

// Shedder decides which calls to shed. It is safe for concurrent use.
type Shedder struct {
	now       clock.Clock
	width     int64
	ring      []bucket
	minLimit  int64
	cpu       func() float64
	threshold float64

	inflight   atomic.Int64
	limit      atomic.Int64
	limitEpoch atomic.Int64
	lastDrop   atomic.Int64

	shed prometheus.Counter
}

type bucket struct {
	epoch atomic.Int64
	pass  atomic.Int64
	rt    atomic.Int64 // sum of latencies, ns
}

// New returns a Shedder.
func New(opts ...Option) (*Shedder, error) {
	c := &config{window: DefaultWindow, buckets: DefaultBuckets, minLimit: DefaultMinLimit, now: clock.Real}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	s := &Shedder{
		now:       c.now,
		width:     int64(c.window) / int64(c.buckets),
		ring:      make([]bucket, c.buckets),
		minLimit:  c.minLimit,
		cpu:       c.cpu,
		threshold: c.threshold,
	}
	for i := range s.ring {
		s.ring[i].epoch.Store(math.MinInt64)
	}
	s.limitEpoch.Store(math.MinInt64)
	s.lastDrop.Store(math.MinInt64 / 2)
	if c.reg != nil {
		s.shed = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "grpckit_shed_rejected_total", Help: "Calls rejected by the load shedder.",
		})
		for _, col := range []prometheus.Collector{
			s.shed,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "grpckit_shed_inflight", Help: "Calls in flight, as the load shedder counts them.",
			}, func() float64 { return float64(s.inflight.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "grpckit_shed_limit", Help: "The load shedder's current in-flight limit (0: none yet).",
			}, func() float64 {
				if l := s.limit.Load(); l != math.MaxInt64 {
					return float64(l)
				}
				return 0
			}),
		} {
			if err := c.reg.Register(col); err != nil {
				return nil, fmt.Errorf("shed: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// InFlight returns the number of admitted calls in flight.
func (s *Shedder) InFlight() int { return int(s.inflight.Load()) }

// Limit returns the in-flight limit in force now, or math.MaxInt while the
// window has no data.
func (s *Shedder) Limit() int {
	if l := s.maxInFlight(s.now()); l < math.MaxInt {
		return int(l)
	}
	return math.MaxInt
}

// maxInFlight returns the limit, computing it once per bucket.
func (s *Shedder) maxInFlight(now int64) int64 {
	epoch := now / s.width
	if s.limitEpoch.Load() == epoch {
		return s.limit.Load()
	}
	var maxPass int64
	minRT := int64(math.MaxInt64)
	n := int64(len(s.ring))
	for i := range s.ring {
		b := &s.ring[i]
		e := b.epoch.Load()
		if e >= epoch || e <= epoch-n {
			continue // the current bucket, incomplete, or out of the window
		}
		pass := b.pass.Load()
		if pass == 0 {
			continue
		}
		maxPass = max(maxPass, pass)
		minRT = min(minRT, b.rt.Load()/pass)
	}
	limit := int64(math.MaxInt64)
	if maxPass > 0 {
		limit = max(s.minLimit, int64(math.Ceil(float64(maxPass)*float64(minRT)/float64(s.width))))
	}
	s.limit.Store(limit)
	s.limitEpoch.Store(epoch)
	return limit
}

// admit admits a call or not; it returns the call's start time.
func (s *Shedder) admit() (int64, bool) {
	now := s.now()
	n := s.inflight.Add(1)
	if n > s.maxInFlight(now) && s.overloaded(now) {
		s.inflight.Add(-1)
		s.reject(now)
		return 0, false
	}
	return now, true
}

func (s *Shedder) reject(now int64) {
	s.lastDrop.Store(now)
	if s.shed != nil {
		s.shed.Inc()
	}
}

func (s *Shedder) overloaded(now int64) bool {
	if s.cpu == nil {
		return true
	}
	return s.cpu() >= s.threshold || now-s.lastDrop.Load() < cooldown
}

// done records an admitted call's completion.
func (s *Shedder) done(start int64) {
	end := s.now()
	epoch := end / s.width
	b := &s.ring[epoch%int64(len(s.ring))]
	if e := b.epoch.Load(); e != epoch && b.epoch.CompareAndSwap(e, epoch) {
		b.pass.Store(0)
		b.rt.Store(0)
	}
	b.pass.Add(1)
	b.rt.Add(end - start)
	s.inflight.Add(-1)
}

// UnaryServerInterceptor sheds unary calls with codes.ResourceExhausted
// when the server is overloaded.
func UnaryServerInterceptor(s *Shedder) grpc.UnaryServerInterceptor {
	return chain.Stage(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
		start, ok := s.admit()
		if !ok {
			return nil, errShed
		}
		defer s.done(start)
		return next(ctx, req, info, handler)
	}).Interceptor()
}

// StreamServerInterceptor sheds new streams while the server is
// overloaded: while the unary calls in flight are at the limit. Streams
// themselves are not counted in flight and their durations are not latency
// samples, since a stream may live for hours (a watch): counting it would
// make a server with many idle streams shed every call.
func StreamServerInterceptor(s *Shedder) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		now := s.now()
		if s.inflight.Load() >= s.maxInFlight(now) && s.overloaded(now) {
			s.reject(now)
			return errShed
		}
		return handler(srv, ss)
	}
}
