package tracing_test

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/tracing"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// sampledEnv is a bare grpc-go server and client, traced by the
// interceptors, that each decide root calls with WithSampling, recording
// spans; the server notes what each call brought: its trace header and
// baggage.
type sampledEnv struct {
	srec, crec *tracetest.SpanRecorder
	ctp        *sdktrace.TracerProvider
	ec         echov1.EchoServiceClient
	addr       string // the server's

	mu      sync.Mutex
	headers []string // traceparent per call, "" when none
	bags    []string
}

func startSampled(t *testing.T, serverRatio, clientRatio float64) *sampledEnv {
	t.Helper()
	e := &sampledEnv{srec: tracetest.NewSpanRecorder(), crec: tracetest.NewSpanRecorder()}
	// The providers keep their default sampler (parent-based, always on).
	stp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.srec))
	e.ctp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.crec))
	t.Cleanup(func() { _ = stp.Shutdown(context.Background()); _ = e.ctp.Shutdown(context.Background()) })
	e.addr = serveTraced(t, &grpckittest.Backend{}, []tracing.Option{tracing.WithTracerProvider(stp), tracing.WithSampling(serverRatio)},
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			e.mu.Lock()
			e.headers = append(e.headers, strings.Join(md.Get("traceparent"), ","))
			e.bags = append(e.bags, baggage.FromContext(ctx).Member("tenant").Value())
			e.mu.Unlock()
			return h(ctx, req)
		})
	e.ec = dialTraced(t, e.addr, tracing.WithTracerProvider(e.ctp), tracing.WithSampling(clientRatio))
	return e
}

func (e *sampledEnv) call(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := e.ec.Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
}

func withTenant(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	m, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	b, err := baggage.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return baggage.ContextWithBaggage(ctx, b)
}

// TestSamplingZeroBuildsAndSendsNothing: an unsampled root call records no
// span on either side and sends no trace header, but its baggage still
// crosses.
func TestSamplingZeroBuildsAndSendsNothing(t *testing.T) {
	e := startSampled(t, 0, 0)
	ctx := withTenant(t, grpckittest.Context(t, 10*time.Second))
	for range 20 {
		e.call(t, ctx)
	}
	ss, err := e.ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "s", Count: 2})
	for err == nil {
		_, err = ss.Recv()
	}
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if n := len(e.srec.Ended()) + len(e.crec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded, want none", n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, h := range e.headers {
		if h != "" {
			t.Fatalf("call %d sent traceparent %q, want none", i, h)
		}
		if e.bags[i] != "acme" {
			t.Fatalf("call %d: baggage tenant = %q, want acme", i, e.bags[i])
		}
	}
}

// TestSamplingFollowsParent: with a ratio of 0 on both sides, a call made
// inside a sampled span is traced end to end, in the caller's trace.
func TestSamplingFollowsParent(t *testing.T) {
	e := startSampled(t, 0, 0)
	ctx, root := e.ctp.Tracer("test").Start(grpckittest.Context(t, 10*time.Second), "root")
	e.call(t, ctx)
	root.End()
	spans := append(waitSpans(t, e.srec, 1), waitSpans(t, e.crec, 2)...)
	for _, s := range spans {
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %s (%v) in trace %v, want the root's %v", s.Name(), s.SpanKind(), s.SpanContext().TraceID(), root.SpanContext().TraceID())
		}
	}
}

// TestSamplingAllTracesEveryRoot: a ratio of 1 traces every root call on
// the client, and the server follows.
func TestSamplingAllTracesEveryRoot(t *testing.T) {
	e := startSampled(t, 0, 1)
	ctx := grpckittest.Context(t, 10*time.Second)
	for range 10 {
		e.call(t, ctx)
	}
	cs, ss := waitSpans(t, e.crec, 10), waitSpans(t, e.srec, 10)
	traces := map[trace.TraceID]int{}
	for _, s := range append(cs, ss...) {
		traces[s.SpanContext().TraceID()]++
	}
	if len(traces) != 10 {
		t.Fatalf("got %d traces, want 10 with a client and a server span each", len(traces))
	}
	for id, n := range traces {
		if n != 2 {
			t.Errorf("trace %v has %d spans, want 2", id, n)
		}
	}
}

// TestSamplingRatio: the client traces about half of its root calls; the
// server, at ratio 0, traces exactly those and starts none of its own.
func TestSamplingRatio(t *testing.T) {
	const calls = 400
	e := startSampled(t, 0, 0.5)
	ctx := grpckittest.Context(t, 20*time.Second)
	for range calls {
		e.call(t, ctx)
	}
	n := len(e.crec.Ended())
	// Binomial(400, 0.5): sd 10; 6 sd either side.
	if math.Abs(float64(n)-calls/2) > 60 {
		t.Fatalf("client traced %d of %d calls, want about %d", n, calls, calls/2)
	}
	waitSpans(t, e.srec, n)
	time.Sleep(50 * time.Millisecond)
	if s := len(e.srec.Ended()); s != n {
		t.Fatalf("server traced %d calls, want the client's %d", s, n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	sent := 0
	for _, h := range e.headers {
		if h != "" {
			sent++
			if !strings.HasSuffix(h, "-01") {
				t.Errorf("traceparent %q, want the sampled flag", h)
			}
		}
	}
	if sent != n {
		t.Fatalf("%d calls carried a traceparent, want the %d traced ones", sent, n)
	}
}

// TestSamplingNestedCallsFollowTheServedCall: a call the relay decided not
// to trace makes an untraced nested call, although the relay's client
// would trace every root of its own; a traced call is traced end to end.
// A client that leaves sampling to the provider follows its provider.
func TestSamplingNestedCallsFollowTheServedCall(t *testing.T) {
	leaf := startSampled(t, 0, 0) // only its server is used
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	// A relay calls the next hop with the context it was called with.
	relay := func(next echov1.EchoServiceClient) *grpckittest.Backend {
		return &grpckittest.Backend{Handler: func(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
			return next.Echo(ctx, &echov1.EchoRequest{Message: "leaf"})
		}}
	}
	next := dialTraced(t, leaf.addr, tracing.WithTracerProvider(tp), tracing.WithSampling(1))
	mid := serveTraced(t, relay(next), []tracing.Option{tracing.WithTracerProvider(tp), tracing.WithSampling(0)})
	ctx := grpckittest.Context(t, 10*time.Second)

	// The same relay whose client leaves sampling to the provider, which
	// samples everything.
	nextByProvider := dialTraced(t, leaf.addr, tracing.WithTracerProvider(tp))
	mid2 := serveTraced(t, relay(nextByProvider), []tracing.Option{tracing.WithTracerProvider(tp), tracing.WithSampling(0)})

	untraced := dialTraced(t, mid, tracing.WithTracerProvider(tp), tracing.WithSampling(0))
	for range 10 {
		if _, err := untraced.Echo(ctx, &echov1.EchoRequest{Message: "relay"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rec.Ended()) + len(leaf.srec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded for untraced calls, want none", n)
	}
	leaf.mu.Lock()
	for i, h := range leaf.headers {
		if h != "" {
			t.Errorf("nested call %d carried traceparent %q, want none", i, h)
		}
	}
	leaf.mu.Unlock()

	// The provider-deciding client's nested calls are roots of their own:
	// its provider samples every call.
	viaProvider := dialTraced(t, mid2, tracing.WithTracerProvider(tp), tracing.WithSampling(0))
	if _, err := viaProvider.Echo(ctx, &echov1.EchoRequest{Message: "relay"}); err != nil {
		t.Fatal(err)
	}
	nested := waitSpans(t, rec, 1)
	if len(nested) != 1 || nested[0].SpanKind() != trace.SpanKindClient || nested[0].Parent().IsValid() {
		t.Fatalf("nested call of a provider-deciding client: got %v, want one client root span", nested)
	}
	waitSpans(t, leaf.srec, 1) // the leaf follows the nested call's trace
	rec.Reset()
	leaf.srec.Reset()

	traced := dialTraced(t, mid, tracing.WithTracerProvider(tp), tracing.WithSampling(1))
	if _, err := traced.Echo(ctx, &echov1.EchoRequest{Message: "relay"}); err != nil {
		t.Fatal(err)
	}
	spans := append(waitSpans(t, rec, 3), waitSpans(t, leaf.srec, 1)...)
	for _, s := range spans[1:] {
		if s.SpanContext().TraceID() != spans[0].SpanContext().TraceID() {
			t.Fatalf("span %s (%v) in trace %v, want one trace for the whole chain", s.Name(), s.SpanKind(), s.SpanContext().TraceID())
		}
	}
}
