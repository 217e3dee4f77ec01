package tracing_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/baregrpc"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.Ended()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d ended spans, want %d", len(rec.Ended()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return rec.Ended()
}

// serveTraced serves b on a bare grpc-go server whose calls go through the
// tracing interceptors configured by opts, then through inner, and returns
// its address.
func serveTraced(t *testing.T, b *grpckittest.Backend, opts []tracing.Option, inner ...grpc.UnaryServerInterceptor) string {
	t.Helper()
	return baregrpc.Serve(t, b.Register,
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{tracing.UnaryServerInterceptor(opts...)}, inner...)...),
		grpc.ChainStreamInterceptor(tracing.StreamServerInterceptor(opts...)))
}

// dialTraced returns a bare grpc-go echo client of addr whose calls go
// through the tracing interceptors configured by opts.
func dialTraced(t *testing.T, addr string, opts ...tracing.Option) echov1.EchoServiceClient {
	t.Helper()
	return echov1.NewEchoServiceClient(baregrpc.Dial(t, addr,
		grpc.WithChainUnaryInterceptor(tracing.UnaryClientInterceptor(opts...)),
		grpc.WithChainStreamInterceptor(tracing.StreamClientInterceptor(opts...))))
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.String()
		}
	}
	return ""
}

func TestStreamSpansAndStatus(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	b := &grpckittest.Backend{}
	ec := dialTraced(t, serveTraced(t, b, []tracing.Option{tracing.WithTracerProvider(tp)}), tracing.WithTracerProvider(tp))
	ctx := grpckittest.Context(t, 10*time.Second)

	ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "s", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = ss.Recv()
	}
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	spans := waitSpans(t, rec, 2)
	for _, s := range spans {
		if s.Name() != "grpckit.echo.v1.EchoService/ServerStream" || attr(s, "rpc.response.status_code") != "OK" || attr(s, "rpc.system.name") != "grpc" {
			t.Errorf("span %s: status_code=%s system=%s, want ServerStream, OK, grpc", s.Name(), attr(s, "rpc.response.status_code"), attr(s, "rpc.system.name"))
		}
	}
	if spans[0].SpanContext().TraceID() != spans[1].SpanContext().TraceID() {
		t.Fatal("client and server stream spans are in different traces")
	}

	rec.Reset()
	b.Faults.Next(1, grpckittest.Fault{Code: codes.Internal})
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "fail"}); status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want Internal", err)
	}
	for _, s := range waitSpans(t, rec, 2) {
		if s.Status().Code.String() != "Error" || attr(s, "rpc.response.status_code") != "INTERNAL" {
			t.Errorf("%v span: status %v code %s, want Error and INTERNAL", s.SpanKind(), s.Status().Code, attr(s, "rpc.response.status_code"))
		}
	}
}

func TestUnsampledDecisionPropagates(t *testing.T) {
	// The server would sample everything on its own; the client samples
	// nothing. The server must follow the caller's decision.
	srec, crec := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	stp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(srec), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	ctp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(crec), sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = stp.Shutdown(context.Background()); _ = ctp.Shutdown(context.Background()) }()

	var seen trace.SpanContext
	var bag string
	addr := serveTraced(t, &grpckittest.Backend{}, []tracing.Option{tracing.WithTracerProvider(stp)},
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			seen = trace.SpanContextFromContext(ctx)
			bag = baggage.FromContext(ctx).Member("tenant").Value()
			return h(ctx, req)
		})
	ec := dialTraced(t, addr, tracing.WithTracerProvider(ctp))
	m, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	b, err := baggage.New(m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := ctp.Tracer("test").Start(baggage.ContextWithBaggage(grpckittest.Context(t, 10*time.Second), b), "root")
	defer root.End()
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	if !seen.IsValid() || seen.IsSampled() || seen.TraceID() != root.SpanContext().TraceID() {
		t.Fatalf("server span context = %v (sampled %v), want the caller's trace, not sampled", seen.TraceID(), seen.IsSampled())
	}
	if bag != "acme" {
		t.Fatalf("baggage tenant = %q, want acme", bag)
	}
	if n := len(srec.Ended()) + len(crec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded, want none", n)
	}
}
