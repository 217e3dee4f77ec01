package benchkit_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/internal/benchkit"
	"github.com/grpckit/grpckit/server"
)

// BenchmarkObservabilityParts measures each observability feature alone.
//
//	go test -run '^$' -bench ObservabilityParts -benchtime 1x ./internal/benchkit
func BenchmarkObservabilityParts(b *testing.B) {
	quiet := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	loud := slog.New(slog.NewJSONHandler(io.Discard, nil))
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	tp := sdktrace.NewTracerProvider()
	offS := []server.Option{grpckit.WithAccessLog(false), grpckit.WithMetrics(nil)}
	offC := []client.Option{grpckit.WithAccessLog(false), grpckit.WithMetrics(nil), client.WithDefaultTimeout(0)}
	with := func(s []server.Option, c []client.Option) ([]server.Option, []client.Option) {
		return append(append([]server.Option{}, offS...), s...), append(append([]client.Option{}, offC...), c...)
	}
	cfg := func(name string, s []server.Option, c []client.Option) benchkit.Config {
		s, c = with(s, c)
		return benchkit.Config{Name: name, Server: s, Client: c}
	}
	cfgs := []benchkit.Config{
		{Name: "bare grpc-go", Bare: true},
		cfg("off", nil, nil),
		cfg("log filtered", []server.Option{grpckit.WithAccessLog(true), grpckit.WithLogger(quiet)}, []client.Option{grpckit.WithAccessLog(true), grpckit.WithLogger(quiet)}),
		cfg("log emitting", []server.Option{grpckit.WithAccessLog(true), grpckit.WithLogger(loud)}, []client.Option{grpckit.WithAccessLog(true), grpckit.WithLogger(loud)}),
		cfg("trace unsampled (grpckit decides)", []server.Option{grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0)}, []client.Option{grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0)}),
		cfg("trace 1% (grpckit decides)", []server.Option{grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0.01)}, []client.Option{grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0.01)}),
		cfg("trace unsampled (provider decides)", []server.Option{grpckit.WithTracerProvider(never)}, []client.Option{grpckit.WithTracerProvider(never)}),
		cfg("prometheus", []server.Option{grpckit.WithMetrics(prometheus.NewRegistry())}, []client.Option{grpckit.WithMetrics(prometheus.NewRegistry())}),
		cfg("default timeout", nil, []client.Option{client.WithDefaultTimeout(client.DefaultTimeout)}),
	}
	for range b.N {
		benchkit.Report(b, "unary-1", benchkit.Run(b, cfgs, 100, 500, 1, false))
	}
}
