package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	for _, jsonLogs := range []bool{false, true} {
		var out bytes.Buffer
		if err := run(&out, jsonLogs); err != nil {
			t.Fatalf("run(json=%v) = %v", jsonLogs, err)
		}
		s := out.String()
		for _, want := range []string{`grpc_code="OK"`, `grpc_code="InvalidArgument"`, `"TraceID"`, "finished call"} {
			if !strings.Contains(s, want) {
				t.Errorf("json=%v: output lacks %s", jsonLogs, want)
			}
		}
	}
}

// collector is an OpenTelemetry collector's OTLP/gRPC trace endpoint,
// in-process: it keeps the spans it receives.
type collector struct {
	collectortracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (c *collector) Export(_ context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

// TestOTLP configures the example by environment, as a deployment would,
// and checks that the collector got the calls' spans from both sides, in
// one trace.
func TestOTLP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	gs := grpc.NewServer()
	collectortracepb.RegisterTraceServiceServer(gs, c)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	defer func() { gs.Stop(); <-done }()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")

	var out bytes.Buffer
	if err := run(&out, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), `"TraceID"`) {
		t.Error("spans printed to stdout, want them sent to the collector only")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := map[tracepb.Span_SpanKind]int{}
	traces := map[string]bool{}
	for _, s := range c.spans {
		if s.GetName() == "grpckit.addsvc.v1.AddService/Sum" {
			kinds[s.GetKind()]++
			traces[string(s.GetTraceId())] = true
		}
	}
	if kinds[tracepb.Span_SPAN_KIND_CLIENT] != 2 || kinds[tracepb.Span_SPAN_KIND_SERVER] != 2 || len(traces) != 2 {
		t.Errorf("collector: got %v span kinds over %d traces (of %d spans), want 2 client and 2 server spans in 2 traces", kinds, len(traces), len(c.spans))
	}
}
