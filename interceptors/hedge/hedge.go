package hedge

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grpckit/grpckit/internal/budget"
	"github.com/grpckit/grpckit/internal/methodname"
	"github.com/grpckit/grpckit/internal/promreg"
)

// Defaults.
const (
	// DefaultMaxAttempts is the number of attempts a call may make, the
	// first included: one hedge.
	DefaultMaxAttempts = 2
	// MaxAttemptsLimit is the most attempts [WithMaxAttempts] accepts, as
	// gRPC's own hedging policy caps them.
	MaxAttemptsLimit = 5
	// DefaultPercentile, DefaultMinDelay and DefaultMaxDelay are the
	// default delay: the 95th percentile of the method's recent latency,
	// within [1 ms, 1 s].
	DefaultPercentile = 95
	DefaultMinDelay   = time.Millisecond
	DefaultMaxDelay   = time.Second
	// DefaultBudgetRatio is the share of eligible calls that may be hedged.
	DefaultBudgetRatio = 0.1
	// DefaultMinHedgesPerSecond is the floor of the budget.
	DefaultMinHedgesPerSecond = 10
)

// ErrInvalid is wrapped by the errors of invalid option values.
var ErrInvalid = errors.New("hedge: invalid option")

// Option configures [New].
type Option func(*config)

type config struct {
	methods methodname.Table[bool]
	// delay > 0 or fixed: a fixed delay; else the percentile of recent
	// latency within [minDelay, maxDelay].
	fixed              bool
	delay              time.Duration
	pct                float64
	minDelay, maxDelay time.Duration
	maxAttempts        int
	ratio, floor       float64
	reg                prometheus.Registerer
	errs               []error
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
}

// WithMethods marks methods as idempotent and hedges their unary calls. A
// method is a full name, "/package.Service/Method", or "/package.Service/*"
// for every method of a service, as in package retry. It may be given
// several times; the methods add up. Default: no method is hedged.
func WithMethods(methods ...string) Option {
	return func(c *config) {
		for _, m := range methods {
			if err := c.methods.Set(m, true); err != nil {
				c.invalid("WithMethods: %v", err)
			}
		}
	}
}

// WithDelay sends each hedge d after the previous attempt started, if no
// attempt has answered by then. It replaces [WithPercentile]. Default: the
// 95th percentile of recent latency (see WithPercentile).
func WithDelay(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.invalid("WithDelay(%v): want >= 0", d)
			return
		}
		c.fixed, c.delay = true, d
	}
}

// WithPercentile sends each hedge after the p-th percentile (0 < p < 100)
// of the method's recent latency, kept within [min, max], as brpc's backup
// requests do: with p = 95, about 5% of the calls are hedged. The latency
// is that of the first attempts of the method's last 1024 calls that did
// not fail (an attempt that lost to a hedge counts with the time it had
// run when it was cancelled, a lower bound: the percentile stays right as
// long as it is below it). The delay is recomputed every 64 calls; until
// 64 calls have been measured, it is max. It replaces [WithDelay].
// Default: p = [DefaultPercentile], min = [DefaultMinDelay], max =
// [DefaultMaxDelay].
func WithPercentile(p float64, min, max time.Duration) Option {
	return func(c *config) {
		if !(p > 0 && p < 100) || min < 0 || max < min {
			c.invalid("WithPercentile(%v, %v, %v): want 0 < p < 100 and 0 <= min <= max", p, min, max)
			return
		}
		c.fixed, c.pct, c.minDelay, c.maxDelay = false, p, min, max
	}
}

// WithMaxAttempts sets how many attempts a call may make, the first
// included (2 to [MaxAttemptsLimit]). Default: [DefaultMaxAttempts].
func WithMaxAttempts(n int) Option {
	return func(c *config) {
		if n < 2 || n > MaxAttemptsLimit {
			c.invalid("WithMaxAttempts(%d): want 2 to %d", n, MaxAttemptsLimit)
			return
		}
		c.maxAttempts = n
	}
}

// WithBudget bounds the hedges: they may add ratio (0 to 1) of the hedged
// methods' calls, plus minPerSecond hedges per second, with the semantics
// of package retry's budget. A Hedger's budget is its own, not the
// retries'. Default: [DefaultBudgetRatio] and [DefaultMinHedgesPerSecond].
func WithBudget(ratio, minPerSecond float64) Option {
	return func(c *config) {
		if !(ratio >= 0 && ratio <= 1) || !(minPerSecond >= 0) {
			c.invalid("WithBudget(%v, %v): want 0 <= ratio <= 1 and minPerSecond >= 0", ratio, minPerSecond)
			return
		}
		c.ratio, c.floor = ratio, minPerSecond
	}
}

// WithRegisterer exports grpckit_hedge_sent_total{method},
// grpckit_hedge_won_total{method} and
// grpckit_hedge_budget_exhausted_total{method} on r. Default: no metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) { c.reg = r }
}

// Hedger hedges calls; one Hedger's budget, latency windows and counts are
// shared by every interceptor built from it.
type Hedger struct {
	cfg     *config
	budget  *budget.Bucket
	methods sync.Map // method → *methodStats, made at the method's first hedged call

	sent, won, exhausted *prometheus.CounterVec
}

// methodStats is what a Hedger keeps of one hedged method: the counts of
// [MethodState] and, with a percentile delay, the latency window.
type methodStats struct {
	win              *window // nil: fixed delay
	calls            atomic.Int64
	sent, won, exhst count
}

// count is one of a method's counts, and its Prometheus series when the
// Hedger has a registerer.
type count struct {
	n atomic.Int64
	c prometheus.Counter // nil: no metrics
}

func (c *count) add() {
	c.n.Add(1)
	if c.c != nil {
		c.c.Inc()
	}
}

// New returns a Hedger.
func New(opts ...Option) (*Hedger, error) {
	c := &config{
		pct:         DefaultPercentile,
		minDelay:    DefaultMinDelay,
		maxDelay:    DefaultMaxDelay,
		maxAttempts: DefaultMaxAttempts,
		ratio:       DefaultBudgetRatio,
		floor:       DefaultMinHedgesPerSecond,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	h := &Hedger{cfg: c, budget: budget.New(c.ratio, c.floor, nil)}
	if c.reg != nil {
		var err error
		for _, m := range []struct {
			dst        **prometheus.CounterVec
			name, help string
		}{
			{&h.sent, "grpckit_hedge_sent_total", "Hedged attempts sent (attempts after the first)."},
			{&h.won, "grpckit_hedge_won_total", "Calls answered by a hedged attempt."},
			{&h.exhausted, "grpckit_hedge_budget_exhausted_total", "Hedges not sent because the hedging budget was spent."},
		} {
			if *m.dst, err = register(c.reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.name, Help: m.help}, []string{"method"})); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

func register(r prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	c, err := promreg.Register(r, c)
	if err != nil {
		return nil, fmt.Errorf("hedge: register metrics: %w", err)
	}
	return c, nil
}

// Hedged reports whether method's unary calls are hedged.
func (h *Hedger) Hedged(method string) bool {
	_, ok := h.cfg.methods.Lookup(method)
	return ok
}

// stats returns method's counts and latency window, making them at the
// method's first hedged call.
func (h *Hedger) stats(method string) *methodStats {
	if m, ok := h.methods.Load(method); ok {
		return m.(*methodStats)
	}
	m := &methodStats{}
	if !h.cfg.fixed {
		m.win = &window{}
	}
	if h.sent != nil {
		m.sent.c, m.won.c, m.exhst.c = h.sent.WithLabelValues(method), h.won.WithLabelValues(method), h.exhausted.WithLabelValues(method)
	}
	v, _ := h.methods.LoadOrStore(method, m)
	return v.(*methodStats)
}

// delay returns the delay before the next hedge of a call of w's method.
func (h *Hedger) delay(w *window) time.Duration {
	if w == nil {
		return h.cfg.delay
	}
	d, ok := w.percentile()
	if !ok {
		return h.cfg.maxDelay
	}
	return min(max(d, h.cfg.minDelay), h.cfg.maxDelay)
}

// State is a Hedger's configuration, budget and counts, for admin pages
// (package admin shows it per client as "hedging"); [Hedger.Snapshot]
// returns it. The counts are those of the Hedger's life.
type State struct {
	// Percentile is the percentile of recent latency the delay follows,
	// within [MinDelay, MaxDelay] ([WithPercentile]); 0 with a fixed delay
	// ([WithDelay]), which is then every method's Delay.
	Percentile float64       `json:"percentile,omitempty"`
	MinDelay   time.Duration `json:"minDelayNs,omitempty"`
	MaxDelay   time.Duration `json:"maxDelayNs,omitempty"`
	// MaxAttempts is the most attempts a call makes, the first included.
	MaxAttempts int `json:"maxAttempts"`
	// Available is how many hedges the budget holds now (the floor of
	// minPerSecond comes on top); Capacity is the most it holds.
	Available float64 `json:"available"`
	Capacity  float64 `json:"capacity"`
	// Calls, Sent, Won and Exhausted are the sums of the methods'.
	Calls     int64 `json:"calls"`
	Sent      int64 `json:"sent"`
	Won       int64 `json:"won"`
	Exhausted int64 `json:"exhausted"`
	// Methods are the hedged methods that were called, by name.
	Methods []MethodState `json:"methods"`
}

// MethodState is one hedged method's delay and counts.
type MethodState struct {
	// Method is the full method name, "/package.Service/Method".
	Method string `json:"method"`
	// Delay is the delay before the method's next hedge: the fixed delay,
	// or the percentile of its recent latency within [min, max].
	Delay time.Duration `json:"delayNs"`
	// Measured reports whether Delay comes from measured latency: false
	// with a fixed delay, and with a percentile delay until 64 calls were
	// measured (Delay is then max).
	Measured bool `json:"measured"`
	// Calls counts the method's calls that went through the hedger; Sent,
	// the hedges sent (a hedge the breaker rejected included); Won, the
	// calls a hedge answered; Exhausted, the hedges not sent because the
	// budget was spent.
	Calls     int64 `json:"calls"`
	Sent      int64 `json:"sent"`
	Won       int64 `json:"won"`
	Exhausted int64 `json:"exhausted"`
}

// Snapshot returns the Hedger's state. It takes no lock the calls take.
func (h *Hedger) Snapshot() State {
	avail, capacity := h.budget.Available()
	st := State{MaxAttempts: h.cfg.maxAttempts, Available: avail, Capacity: capacity, Methods: []MethodState{}}
	if !h.cfg.fixed {
		st.Percentile, st.MinDelay, st.MaxDelay = h.cfg.pct, h.cfg.minDelay, h.cfg.maxDelay
	}
	h.methods.Range(func(k, v any) bool {
		m := v.(*methodStats)
		ms := MethodState{Method: k.(string), Delay: h.delay(m.win), Calls: m.calls.Load(), Sent: m.sent.n.Load(),
			Won: m.won.n.Load(), Exhausted: m.exhst.n.Load()}
		if m.win != nil {
			_, ms.Measured = m.win.percentile()
		}
		st.Calls += ms.Calls
		st.Sent += ms.Sent
		st.Won += ms.Won
		st.Exhausted += ms.Exhausted
		st.Methods = append(st.Methods, ms)
		return true
	})
	slices.SortFunc(st.Methods, func(a, b MethodState) int { return cmp.Compare(a.Method, b.Method) })
	return st
}
