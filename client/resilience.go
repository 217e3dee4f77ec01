package client

import (
	"fmt"
	"slices"

	"golang.org/x/time/rate"

	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/hedge"
	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/interceptors/retry"
)

// resilienceConfig holds the retry, breaker and rate-limit options.
//
// Defaults: a circuit breaker per method (package breaker's defaults: open
// after 5 consecutive failures, probe after 10 s); no retries until methods
// are marked idempotent; a retry budget of 10% of calls plus 10 retries per
// second; no hedging; no client-side rate limit.
type resilienceConfig struct {
	retryOpts  []retry.Option // WithRetry / WithIdempotent, in order
	budget     []retry.Option
	hedging    bool
	hedge      []hedge.Option
	breakerOff bool
	breaker    []breaker.Option
	throttle   bool
	rate       []ratelimit.Option // nil: no rate limit
}

// WithRetry retries the unary calls of methods ("/pkg.Svc/Method" or
// "/pkg.Svc/*") by p, which must be safe to repeat: only idempotent methods
// may be named. Retries run at [SlotRetry], inside the default deadline
// (all attempts share it) and outside the breaker (an open breaker ends
// them). Streams are not retried (see package retry). It may be given
// several times for different methods. Default: no method is retried.
func WithRetry(p retry.Policy, methods ...string) Option {
	return option(func(c *config) {
		c.resilience.retryOpts = append(c.resilience.retryOpts, retry.WithMethods(p, methods...))
	})
}

// WithIdempotent marks methods as idempotent and retries them by the
// default policy: 3 attempts, backoff from 50 ms to 1 s with jitter, on
// Unavailable only. Default: no method is retried.
func WithIdempotent(methods ...string) Option {
	return WithRetry(retry.Policy{}, methods...)
}

// WithRetryBudget lets retries add at most ratio (0 to 1) of the calls of
// retried methods, plus minPerSecond retries per second, so that retries
// cannot multiply the load during an outage. Default: retry's defaults,
// 0.1 and 10.
func WithRetryBudget(ratio, minPerSecond float64) Option {
	return option(func(c *config) {
		c.resilience.budget = []retry.Option{retry.WithBudget(ratio, minPerSecond)}
	})
}

// WithHedging hedges the unary calls of the methods named with
// hedge.WithMethods among opts (see package hedge for the delay, attempts
// and budget): when an attempt has not answered after the delay, another
// goes to a different endpoint and the first answer wins. Name only
// idempotent methods. Hedging runs at [SlotRetry], inside the retries and
// outside the breaker: a method may be both retried and hedged, in which
// case each retry is a hedged call, and each hedged attempt is judged by
// the breaker, so that an open breaker receives no hedge. The hedges have
// their own budget (hedge.WithBudget), apart from the retries'. Streams
// are not hedged. Default: off.
func WithHedging(opts ...hedge.Option) Option {
	return option(func(c *config) {
		c.resilience.hedging, c.resilience.hedge = true, opts
	})
}

// WithBreaker configures the circuit breakers at [SlotBreaker], one per
// method (see package breaker for the options: threshold, timeout, failure
// codes, key). An open breaker fails calls with codes.Unavailable without
// sending them, and retries stop. Default: on, with breaker's defaults.
func WithBreaker(opts ...breaker.Option) Option {
	return option(func(c *config) {
		c.resilience.breaker, c.resilience.breakerOff, c.resilience.throttle = opts, false, false
	})
}

// WithoutBreaker turns circuit breaking off. Default: on.
func WithoutBreaker() Option {
	return option(func(c *config) { c.resilience.breakerOff, c.resilience.throttle = true, false })
}

// WithAdaptiveThrottle replaces the circuit breakers with Google SRE's
// adaptive throttling for the whole target (see breaker.NewThrottle): as a
// backend fails, a growing share of calls fails locally with
// codes.Unavailable, without the breaker's all-or-nothing flips. Default:
// circuit breakers.
func WithAdaptiveThrottle(opts ...breaker.Option) Option {
	return option(func(c *config) {
		c.resilience.breaker, c.resilience.breakerOff, c.resilience.throttle = opts, false, true
	})
}

// WithRateLimit limits the calls this connection sends to r per second with
// bursts of burst, at [SlotRateLimit]. Over the limit a call fails with
// codes.ResourceExhausted, or waits for its turn within its deadline with
// ratelimit.WithWait among opts. Default: no client-side rate limit.
func WithRateLimit(r rate.Limit, burst int, opts ...ratelimit.Option) Option {
	return option(func(c *config) {
		c.resilience.rate = append([]ratelimit.Option{ratelimit.WithRate(r, burst), ratelimit.WithName("client_rate")}, opts...)
	})
}

// installResilience installs retries, circuit breaking and client-side rate
// limits for calls to target. What is off installs nothing.
func installResilience(cfg *config, b *builtins, target string) error {
	r := &cfg.resilience
	reg := cfg.metricsRegisterer()
	if len(r.retryOpts) > 0 || len(r.budget) > 0 {
		opts := slices.Concat(r.retryOpts, r.budget)
		if reg != nil && len(r.retryOpts) > 0 {
			opts = append(opts, retry.WithRegisterer(reg))
		}
		rt, err := retry.New(opts...)
		if err != nil {
			return fmt.Errorf("client: WithRetry: %w", err)
		}
		if len(r.retryOpts) > 0 {
			b.add(SlotRetry, retry.UnaryClientInterceptor(rt), nil)
			b.admin.retrier = rt
		}
	}
	if r.hedging {
		opts := slices.Clone(r.hedge)
		if reg != nil {
			opts = append(opts, hedge.WithRegisterer(reg))
		}
		h, err := hedge.New(opts...)
		if err != nil {
			return fmt.Errorf("client: WithHedging: %w", err)
		}
		b.add(SlotRetry, hedge.UnaryClientInterceptor(h), nil)
		b.admin.hedger = h
	}
	if !r.breakerOff {
		opts := slices.Concat([]breaker.Option{breaker.WithLogger(cfg.common.Logger)}, r.breaker)
		if reg != nil {
			opts = append(opts, breaker.WithRegisterer(reg))
		}
		var p breaker.Policy
		var err error
		if r.throttle {
			p, err = breaker.NewThrottle(target, opts...)
		} else {
			p, err = breaker.New(target, opts...)
		}
		if err != nil {
			name := "WithBreaker"
			if r.throttle {
				name = "WithAdaptiveThrottle"
			}
			return fmt.Errorf("client: %s: %w", name, err)
		}
		b.add(SlotBreaker, breaker.UnaryClientInterceptor(p), breaker.StreamClientInterceptor(p))
		b.admin.breakers, _ = p.(*breaker.Breakers)
	}
	if r.rate != nil {
		opts := slices.Clone(r.rate)
		if reg != nil {
			opts = append(opts, ratelimit.WithRegisterer(reg))
		}
		l, err := ratelimit.New(opts...)
		if err != nil {
			return fmt.Errorf("client: WithRateLimit: %w", err)
		}
		b.add(SlotRateLimit, ratelimit.UnaryClientInterceptor(l), ratelimit.StreamClientInterceptor(l))
		b.admin.limiter = l
	}
	return nil
}
