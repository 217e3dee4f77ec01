package benchkit_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"golang.org/x/time/rate"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/benchkit"
	"github.com/grpckit/grpckit/server"
)

// observabilityConfigs are the configurations of issue 3's budget.
func observabilityConfigs() []benchkit.Config {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	loud := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// The provider keeps its default sampler (parent-based, always on) and
	// grpckit decides root calls (WithTraceSampling).
	tp := sdktrace.NewTracerProvider()
	// The provider decides every call: unsampled calls still build and
	// propagate their span context.
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	onePct := sdktrace.NewTracerProvider(sdktrace.WithSampler(tracing.Sampler(0.01)))
	chain := func(name string, grpckitSamples bool, clientExtra ...client.Option) benchkit.Config {
		// The client starts 1% of traces; the server only continues them
		// (at 0.01 it would also start traces for 1% of the calls the
		// client left untraced: 2% in all).
		st := []server.Option{grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0)}
		ct := []client.Option{grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0.01)}
		if !grpckitSamples {
			st = []server.Option{grpckit.WithTracerProvider(onePct)}
			ct = []client.Option{grpckit.WithTracerProvider(onePct)}
		}
		return benchkit.Config{Name: name,
			// A server rate limit that admits everything; the client's
			// default breaker and p2c balancer; recovery on both sides.
			Server: append([]server.Option{grpckit.WithLogger(loud), grpckit.WithMetrics(prometheus.NewRegistry()), server.WithRateLimit(rate.Inf, 1)}, st...),
			Client: append(append([]client.Option{grpckit.WithLogger(loud), grpckit.WithMetrics(prometheus.NewRegistry())}, ct...), clientExtra...)}
	}
	production := func(name string, clientExtra ...client.Option) benchkit.Config {
		return chain(name, true, clientExtra...)
	}
	providerSampled := chain("production, provider samples 1%", false, client.WithDefaultTimeout(0))
	withDeadline := production("production + default deadline")
	withDeadline.Ref = "bare grpc-go, 30s deadline"
	return []benchkit.Config{
		{Name: "bare grpc-go", Bare: true},
		{Name: "bare grpc-go, 30s deadline", Bare: true, CallTimeout: 30 * time.Second},
		{Name: "off",
			Server: []server.Option{grpckit.WithAccessLog(false), grpckit.WithMetrics(nil)},
			Client: []client.Option{grpckit.WithAccessLog(false), grpckit.WithMetrics(nil), client.WithDefaultTimeout(0)}},
		{Name: "on, not emitting",
			Server: []server.Option{grpckit.WithLogger(quiet), grpckit.WithMetrics(nil), grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0)},
			Client: []client.Option{grpckit.WithLogger(quiet), grpckit.WithMetrics(nil), grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0), client.WithDefaultTimeout(0)}},
		{Name: "on, not emitting, provider samples",
			Server: []server.Option{grpckit.WithLogger(quiet), grpckit.WithMetrics(nil), grpckit.WithTracerProvider(never)},
			Client: []client.Option{grpckit.WithLogger(quiet), grpckit.WithMetrics(nil), grpckit.WithTracerProvider(never), client.WithDefaultTimeout(0)}},
		// The chain of the budget: one access-log line per call on each
		// side, Prometheus, 1% parent-based sampling, limiter, breaker,
		// recovery. The builder's default 30 s deadline is off here and on
		// in the next row, which compares with bare calls that carry the
		// same deadline: a deadline costs grpc-go itself 18 allocations
		// (timers and contexts on both sides), whoever sets it.
		production("production", client.WithDefaultTimeout(0)),
		withDeadline,
		providerSampled,
	}
}

// BenchmarkObservability compares the observability chains with bare
// grpc-go: unary calls with 1 and 8 in flight, and bidi stream messages.
// b.N is not used: each run is a fixed set of interleaved rounds.
//
//	go test -run '^$' -bench Observability -benchtime 1x ./internal/benchkit
func BenchmarkObservability(b *testing.B) {
	for _, tc := range []struct {
		name     string
		inflight int
		stream   bool
		rounds   int
	}{
		{"unary-1", 1, false, 120},
		{"unary-8", 8, false, 120},
		// A stream message costs half a unary call and the configurations
		// differ by little: more rounds for the same precision.
		{"stream-1", 1, true, 360},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				res := benchkit.Run(b, observabilityConfigs(), tc.rounds, 600, tc.inflight, tc.stream)
				benchkit.Report(b, tc.name, res)
			}
		})
	}
}
