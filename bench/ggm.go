package main

import (
	"context"
	"log/slog"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/timeout"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// ggmConfig is grpc-go with a hand-assembled chain as go-grpc-middleware
// v2's examples (examples/server and examples/client) build it: otelgrpc's
// stats handlers for tracing, then providers/prometheus metrics with trace
// exemplars, slog logging through logging.LoggerFunc with the trace id
// from the context, and recovery on the server; a 30 s deadline
// (timeout.UnaryClientInterceptor, like grpckit's default), metrics and
// logging on the client. Their examples' auth and tenant labels are
// application-specific and left out. The examples sample every trace; here
// 1% of root traces, parent-based, like grpckit production, into a batch
// processor as the examples do. The examples' propagators (W3C trace
// context and baggage) are passed to otelgrpc rather than set globally.
// otelgrpc's own RPC metrics go to otel's global meter provider, which
// nothing here sets (a no-op), as in the examples.
func ggmConfig() config {
	return config{name: nameGGM, start: startGGM}
}

func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

func startGGM() (*target, error) {
	tp := newTracerProvider(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)))
	props := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	logger := slog.New(slog.NewTextHandler(logSink, &slog.HandlerOptions{}))
	logTraceID := func(ctx context.Context) logging.Fields {
		if span := trace.SpanContextFromContext(ctx); span.IsSampled() {
			return logging.Fields{"traceID", span.TraceID().String()}
		}
		return nil
	}
	exemplar := func(ctx context.Context) prometheus.Labels {
		if span := trace.SpanContextFromContext(ctx); span.IsSampled() {
			return prometheus.Labels{"traceID": span.TraceID().String()}
		}
		return nil
	}
	buckets := []float64{0.001, 0.01, 0.1, 0.3, 0.6, 1, 3, 6, 9, 20, 30, 60, 90, 120}
	reg := prometheus.NewRegistry()
	srvMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(buckets)))
	clMetrics := grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(buckets)))
	reg.MustRegister(srvMetrics, clMetrics)

	srvLog := interceptorLogger(logger.With("service", "gRPC/server", "component", "bench"))
	clLog := interceptorLogger(logger.With("service", "gRPC/client", "component", "bench"))
	sopts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(props))),
		grpc.ChainUnaryInterceptor(
			srvMetrics.UnaryServerInterceptor(grpcprom.WithExemplarFromContext(exemplar)),
			logging.UnaryServerInterceptor(srvLog, logging.WithFieldsFromContext(logTraceID)),
			recovery.UnaryServerInterceptor(),
		),
		grpc.ChainStreamInterceptor(
			srvMetrics.StreamServerInterceptor(grpcprom.WithExemplarFromContext(exemplar)),
			logging.StreamServerInterceptor(srvLog, logging.WithFieldsFromContext(logTraceID)),
			recovery.StreamServerInterceptor(),
		),
	}
	dopts := []grpc.DialOption{
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(props))),
		grpc.WithChainUnaryInterceptor(
			timeout.UnaryClientInterceptor(30*time.Second),
			clMetrics.UnaryClientInterceptor(grpcprom.WithExemplarFromContext(exemplar)),
			logging.UnaryClientInterceptor(clLog, logging.WithFieldsFromContext(logTraceID)),
		),
		grpc.WithChainStreamInterceptor(
			clMetrics.StreamClientInterceptor(grpcprom.WithExemplarFromContext(exemplar)),
			logging.StreamClientInterceptor(clLog, logging.WithFieldsFromContext(logTraceID)),
		),
	}
	return startGRPC(nameGGM, sopts, dopts, owned{tp: tp})
}
