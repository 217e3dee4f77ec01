package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"golang.org/x/time/rate"

	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/interceptors/shed"
	"github.com/grpckit/grpckit/internal/chain"
	"github.com/prometheus/client_golang/prometheus"
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
	return option(func(c *config) {
		c.resilience.rate = append([]ratelimit.Option{ratelimit.WithRate(r, burst), ratelimit.WithName("server_rate")}, opts...)
	})
}

// WithConcurrencyLimit limits the calls and streams in flight to n; more
// fail with codes.ResourceExhausted at [SlotLimit]. Default: no limit.
func WithConcurrencyLimit(n int) Option {
	return option(func(c *config) {
		if n < 1 {
			c.errorf("WithConcurrencyLimit(%d): want n >= 1", n)
			return
		}
		c.resilience.concurrency = n
	})
}

// WithLoadShedding sheds calls with codes.ResourceExhausted at [SlotLimit]
// when the server is overloaded: when calls in flight exceed what its
// measured throughput and latency can serve (see package shed; pass
// shed.WithCPU with a shed.CPUSampler to gate it on CPU usage). Default: no
// load shedding.
func WithLoadShedding(opts ...shed.Option) Option {
	return option(func(c *config) {
		c.resilience.shed, c.resilience.shedOn = opts, true
	})
}

// installResilience builds and installs, at SlotLimit and outermost
// first: the rate limit (a noisy client is refused before it takes
// capacity from others), the concurrency limit, then load shedding. Each is
// built once, here; what is off installs nothing. Servers sharing a
// registry share the series.
func (s *Server) installResilience(b *builtins) error {
	r := &s.cfg.resilience
	reg := s.metricsRegisterer()
	limiter := func(name string, opts ...ratelimit.Option) error {
		if reg != nil {
			opts = append(slices.Clone(opts), ratelimit.WithRegisterer(reg))
		}
		l, err := ratelimit.New(opts...)
		if err != nil {
			return fmt.Errorf("server: %s: %w", name, err)
		}
		b.add(SlotLimit, chain.StageOf(ratelimit.UnaryServerInterceptor(l)), ratelimit.StreamServerInterceptor(l))
		s.limiters = append(s.limiters, namedLimiter{name, l})
		return nil
	}
	if r.rate != nil {
		if err := limiter("WithRateLimit", r.rate...); err != nil {
			return err
		}
	}
	if r.concurrency > 0 {
		if err := limiter("WithConcurrencyLimit", ratelimit.WithConcurrency(r.concurrency), ratelimit.WithName("server_concurrency")); err != nil {
			return err
		}
	}
	if r.shedOn {
		opts := slices.Clone(r.shed)
		if reg != nil {
			opts = append(opts, shed.WithRegisterer(reg))
		}
		sh, err := shed.New(opts...)
		if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
			// The shedder's gauges read this shedder: a second server on
			// the same registry sheds without them.
			s.cfg.common.Logger.LogAttrs(context.Background(), slog.LevelWarn,
				"server: load shedding installed without metrics: the registry has another shedder's",
				slog.String("error", err.Error()))
			sh, err = shed.New(r.shed...)
		}
		if err != nil {
			return fmt.Errorf("server: WithLoadShedding: %w", err)
		}
		b.add(SlotLimit, chain.StageOf(shed.UnaryServerInterceptor(sh)), shed.StreamServerInterceptor(sh))
	}
	return nil
}
