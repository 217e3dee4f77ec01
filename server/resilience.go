package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"golang.org/x/time/rate"

	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/interceptors/shed"
	"github.com/grpckit/grpckit/interceptors/stage"
)

// resilienceConfig holds the load-shedding and rate-limit options. Each
// limit is off unless its option is given: the server cannot know its own
// capacity, and a wrong default limit refuses healthy traffic.
type resilienceConfig struct {
	rate        []ratelimit.Option // nil: no rate limit
	concurrency int                // 0: no concurrency limit
	shed        []shed.Option      // nil: no load shedding
	shedOn      bool
}

// WithRateLimit limits the calls the server accepts to r per second with
// bursts of burst, in one global bucket or, with ratelimit.WithKey among
// opts, one bucket per method, peer or metadata value (see package
// ratelimit). Calls over the limit fail with codes.ResourceExhausted at
// [SlotLimit], before authentication and validation. Streams take a token
// when they start. Default: no rate limit.
func WithRateLimit(r rate.Limit, burst int, opts ...ratelimit.Option) Option {
	return func(c *config) {
		all := append([]ratelimit.Option{ratelimit.WithRate(r, burst), ratelimit.WithName("server_rate")}, opts...)
		if _, err := ratelimit.New(all...); err != nil {
			c.errorf("WithRateLimit: %w", err)
			return
		}
		c.resilience.rate = all
	}
}

// WithConcurrencyLimit limits the calls and streams in flight to n; more
// fail with codes.ResourceExhausted at [SlotLimit]. Default: no limit.
func WithConcurrencyLimit(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errorf("WithConcurrencyLimit(%d): want n >= 1", n)
			return
		}
		c.resilience.concurrency = n
	}
}

// WithLoadShedding sheds calls with codes.ResourceExhausted at [SlotLimit]
// when the server is overloaded: when calls in flight exceed what its
// measured throughput and latency can serve (see package shed; pass
// shed.WithCPU with a shed.CPUSampler to gate it on CPU usage). Default: no
// load shedding.
func WithLoadShedding(opts ...shed.Option) Option {
	return func(c *config) {
		if _, err := shed.New(opts...); err != nil {
			c.errorf("WithLoadShedding: %w", err)
			return
		}
		c.resilience.shed, c.resilience.shedOn = opts, true
	}
}

// installResilience installs, at SlotLimit and outermost first: the rate
// limit (a noisy client is refused before it takes capacity from others),
// the concurrency limit, then load shedding. What is off installs nothing.
// The options were validated when applied; only registering metrics can
// fail here, and then the interceptor is installed without metrics and the
// error logged.
func (s *Server) installResilience(b *builtins) error {
	r := &s.cfg.resilience
	reg := s.metricsRegisterer()
	// Options are validated first, without metrics: a bad option fails New.
	// A registry that already holds the same series (servers sharing one)
	// only costs the metrics, with a warning.
	warn := func(what string, err error) {
		s.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "server: "+what+" installed without metrics",
			slog.String("error", err.Error()))
	}
	limiter := func(name string, opts ...ratelimit.Option) (*ratelimit.Limiter, error) {
		l, err := ratelimit.New(opts...)
		if err != nil {
			return nil, fmt.Errorf("server: %s: %w", name, err)
		}
		if reg != nil {
			withMetrics, err := ratelimit.New(slices.Concat(opts, []ratelimit.Option{ratelimit.WithRegisterer(reg)})...)
			if err != nil {
				warn(name, err)
				return l, nil
			}
			return withMetrics, nil
		}
		return l, nil
	}
	if r.rate != nil {
		l, err := limiter("rate limit", r.rate...)
		if err != nil {
			return err
		}
		b.add(SlotLimit, ratelimit.UnaryServerStage(l), ratelimit.StreamServerInterceptor(l))
	}
	if r.concurrency > 0 {
		l, err := limiter("concurrency limit", ratelimit.WithConcurrency(r.concurrency), ratelimit.WithName("server_concurrency"))
		if err != nil {
			return err
		}
		b.add(SlotLimit, ratelimit.UnaryServerStage(l), ratelimit.StreamServerInterceptor(l))
	}
	if r.shedOn {
		sh, err := shed.New(r.shed...)
		if err != nil {
			return fmt.Errorf("server: load shedding: %w", err)
		}
		if reg != nil {
			if withMetrics, err := shed.New(slices.Concat(r.shed, []shed.Option{shed.WithRegisterer(reg)})...); err != nil {
				warn("load shedding", err)
			} else {
				sh = withMetrics
			}
		}
		b.add(SlotLimit, stage.FromInterceptor(shed.UnaryServerInterceptor(sh)), shed.StreamServerInterceptor(sh))
	}
	return nil
}
