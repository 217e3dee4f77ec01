package retry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/internal/budget"
	"github.com/grpckit/grpckit/internal/clock"
	"github.com/grpckit/grpckit/internal/methodname"
	"github.com/grpckit/grpckit/internal/promreg"
)

// Defaults.
const (
	// DefaultMaxAttempts is the number of attempts, the first included.
	DefaultMaxAttempts = 3
	// DefaultInitialBackoff is the backoff before the first retry.
	DefaultInitialBackoff = 50 * time.Millisecond
	// DefaultMaxBackoff caps the backoff.
	DefaultMaxBackoff = time.Second
	// DefaultMultiplier multiplies the backoff after each retry.
	DefaultMultiplier = 2.0
	// DefaultBudgetRatio is the fraction of eligible calls that may be retried.
	DefaultBudgetRatio = 0.1
	// DefaultMinRetriesPerSecond is the floor of the budget.
	DefaultMinRetriesPerSecond = 10
)

// ErrInvalid is wrapped by the errors of invalid option values.
var ErrInvalid = errors.New("retry: invalid option")

// Policy says how a group of methods is retried. Zero fields take the
// defaults.
type Policy struct {
	// MaxAttempts counts the first attempt: 3 means up to 2 retries.
	// Default: DefaultMaxAttempts.
	MaxAttempts int
	// InitialBackoff is the backoff before the first retry; each retry
	// multiplies it by Multiplier up to MaxBackoff. The wait is drawn
	// uniformly from [backoff/2, backoff). Defaults: DefaultInitialBackoff,
	// DefaultMaxBackoff, DefaultMultiplier.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Multiplier     float64
	// Codes are the retriable status codes. Default: Unavailable.
	Codes []codes.Code
}

type policy struct {
	maxAttempts int
	initial     float64
	max         float64
	mult        float64
	codes       [codes.Unauthenticated + 1]bool
}

// Option configures [New].
type Option func(*config)

type config struct {
	methods methodname.Table[*policy]
	ratio   float64
	min     float64
	now     clock.Clock
	rand    func() float64
	reg     prometheus.Registerer
	errs    []error
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

// WithMethods marks methods as idempotent and retries them by p. A method
// is a full name, "/package.Service/Method", or "/package.Service/*" for
// every method of a service; an exact name wins over its service. Later
// calls override earlier ones for the same name. Default: no method is
// retried.
func WithMethods(p Policy, methods ...string) Option {
	return func(c *config) {
		pp := &policy{maxAttempts: p.MaxAttempts, initial: float64(p.InitialBackoff), max: float64(p.MaxBackoff), mult: p.Multiplier}
		if pp.maxAttempts == 0 {
			pp.maxAttempts = DefaultMaxAttempts
		}
		if pp.initial == 0 {
			pp.initial = float64(DefaultInitialBackoff)
		}
		if pp.max == 0 {
			pp.max = math.Max(float64(DefaultMaxBackoff), pp.initial)
		}
		if pp.mult == 0 {
			pp.mult = DefaultMultiplier
		}
		if pp.maxAttempts < 1 || pp.initial < 0 || pp.max < pp.initial || pp.mult < 1 {
			c.invalid("WithMethods: bad policy %+v", p)
			return
		}
		cs := p.Codes
		if len(cs) == 0 {
			cs = []codes.Code{codes.Unavailable}
		}
		for _, code := range cs {
			if code == codes.OK || code > codes.Unauthenticated {
				c.invalid("WithMethods: %v is not a retriable code", code)
				return
			}
			pp.codes[code] = true
		}
		for _, m := range methods {
			if err := c.methods.Set(m, pp); err != nil {
				c.invalid("WithMethods: %v", err)
			}
		}
	}
}

// WithBudget sets the retry budget: retries may add ratio (0 to 1) of the
// eligible calls, plus minPerSecond retries per second. Default:
// [DefaultBudgetRatio] and [DefaultMinRetriesPerSecond].
func WithBudget(ratio, minPerSecond float64) Option {
	return func(c *config) {
		if !(ratio >= 0 && ratio <= 1) || !(minPerSecond >= 0) {
			c.invalid("WithBudget(%v, %v): want 0 <= ratio <= 1 and minPerSecond >= 0", ratio, minPerSecond)
			return
		}
		c.ratio, c.min = ratio, minPerSecond
	}
}

// withClock sets the clock of the budget's floor, for tests. Default: the
// runtime's monotonic clock.
func withClock(now func() time.Time) Option {
	return func(c *config) { c.now = clock.FromTime(now) }
}

// withRand sets the jitter's source of uniform numbers in [0, 1), for
// tests. Default: math/rand/v2.Float64.
func withRand(f func() float64) Option {
	return func(c *config) {
		if f != nil {
			c.rand = f
		}
	}
}

// WithRegisterer exports grpckit_retry_retries_total{method} and
// grpckit_retry_budget_exhausted_total{method} on r. Default: no metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) { c.reg = r }
}

// Retrier retries calls; one Retrier's budget is shared by every
// interceptor built from it.
type Retrier struct {
	cfg *config

	budget *budget.Bucket

	retries, exhausted *prometheus.CounterVec
	nRetries, nExhaust atomic.Int64
}

// Budget is a Retrier's retry budget as [Retrier.Budget] sees it.
type Budget struct {
	// Available is how many retries the budget holds now (the floor of
	// minPerSecond comes on top); Capacity is the most it holds.
	Available float64 `json:"available"`
	Capacity  float64 `json:"capacity"`
	// Retries counts the retries sent; Exhausted, the retries not sent
	// because the budget was spent.
	Retries   int64 `json:"retries"`
	Exhausted int64 `json:"exhausted"`
}

// Budget returns the retry budget's state, for admin pages.
func (r *Retrier) Budget() Budget {
	avail, capacity := r.budget.Available()
	return Budget{Available: avail, Capacity: capacity,
		Retries: r.nRetries.Load(), Exhausted: r.nExhaust.Load()}
}

// New returns a Retrier.
func New(opts ...Option) (*Retrier, error) {
	c := &config{
		ratio: DefaultBudgetRatio,
		min:   DefaultMinRetriesPerSecond,
		now:   clock.Real,
		rand:  rand.Float64,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	r := &Retrier{cfg: c, budget: budget.New(c.ratio, c.min, c.now)}
	if c.reg != nil {
		var err error
		if r.retries, err = register(c.reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_retry_retries_total", Help: "Retries sent (attempts after the first).",
		}, []string{"method"})); err != nil {
			return nil, err
		}
		if r.exhausted, err = register(c.reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_retry_budget_exhausted_total", Help: "Retries not sent because the retry budget was spent.",
		}, []string{"method"})); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func register(r prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	c, err := promreg.Register(r, c)
	if err != nil {
		return nil, fmt.Errorf("retry: register metrics: %w", err)
	}
	return c, nil
}

func (r *Retrier) policy(method string) *policy {
	p, _ := r.cfg.methods.Lookup(method)
	return p
}

// Idempotent reports whether method is retried.
func (r *Retrier) Idempotent(method string) bool { return r.policy(method) != nil }

// UnaryClientInterceptor retries the unary calls of the idempotent methods.
func UnaryClientInterceptor(r *Retrier) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		p := r.policy(method)
		if p == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		r.budget.Fill()
		backoff := p.initial
		for attempt := 1; ; attempt++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || attempt >= p.maxAttempts || errors.Is(err, breaker.ErrRejected) {
				return err
			}
			code := status.Code(err)
			if code > codes.Unauthenticated || !p.codes[code] || ctx.Err() != nil {
				return err
			}
			wait := time.Duration(backoff * (0.5 + 0.5*r.cfg.rand()))
			if d, ok := ctx.Deadline(); ok && time.Until(d) <= wait {
				return err
			}
			if !r.budget.Spend() {
				r.nExhaust.Add(1)
				if r.exhausted != nil {
					r.exhausted.WithLabelValues(method).Inc()
				}
				return err
			}
			r.nRetries.Add(1)
			if r.retries != nil {
				r.retries.WithLabelValues(method).Inc()
			}
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return err
				}
			}
			backoff = math.Min(backoff*p.mult, p.max)
		}
	}
}
