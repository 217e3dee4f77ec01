package tracing_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/interceptors/tracing"
)

// BenchmarkUnsampled measures one client and one server interceptor for an
// unsampled call, the propagation between them included, without the
// network.
func BenchmarkUnsampled(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tracing.Sampler(0)))
	ci := tracing.UnaryClientInterceptor(tracing.WithTracerProvider(tp))
	si := tracing.UnaryServerInterceptor(tracing.WithTracerProvider(tp))
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	invoker := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		md, _ := metadata.FromOutgoingContext(ctx)
		_, err := si(metadata.NewIncomingContext(context.Background(), md), req, info, handler)
		return err
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = ci(ctx, info.FullMethod, nil, nil, nil, invoker)
	}
}

// BenchmarkTimeNow is the yardstick for the figures above.
func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}
