package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/echo"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// tracedPair is a bare grpc-go echo server and a client of it, both traced
// one way, recording their spans; down is a client of an address nobody
// listens on.
type tracedPair struct {
	exp      *tracetest.InMemoryExporter
	ec, down echov1.EchoServiceClient
	port     int // the server's
}

func startTracedPair(t *testing.T, downAddr string, srvOpts func(trace.TracerProvider) []grpc.ServerOption, dialOpts func(trace.TracerProvider) []grpc.DialOption) *tracedPair {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(srvOpts(tp)...)
	echov1.RegisterEchoServiceServer(srv, &rawErrors{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	dial := func(addr string) echov1.EchoServiceClient {
		conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOpts(tp)...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return echov1.NewEchoServiceClient(conn)
	}
	return &tracedPair{exp: exp, ec: dial(lis.Addr().String()), down: dial(downAddr), port: lis.Addr().(*net.TCPAddr).Port}
}

// rawErrors is the echo service, but for two messages it fails with an
// error that is no gRPC status, which grpc-go converts.
type rawErrors struct{ echo.Server }

func (s *rawErrors) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	switch req.GetMessage() {
	case "raw error":
		return nil, errors.New("not a status")
	case "raw deadline":
		return nil, fmt.Errorf("waiting: %w", context.DeadlineExceeded)
	}
	return s.Server.Echo(ctx, req)
}

// spanView is what the comparison looks at in a span.
type spanView struct {
	Name   string
	Kind   trace.SpanKind
	Status sdktrace.Status
	Attrs  map[string]string // key -> type=value
	Events []string
	Links  int
	// ChildOfClient: a server span's parent is the client's span.
	ChildOfClient bool
}

// views waits for n ended spans and returns them by kind, with server.port
// checked against the pair's server and replaced by a placeholder.
func (p *tracedPair) views(t *testing.T, n int) map[trace.SpanKind]spanView {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.exp.GetSpans()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d ended spans, want %d", len(p.exp.GetSpans()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	spans := p.exp.GetSpans()
	p.exp.Reset()
	if len(spans) != n {
		t.Fatalf("got %d spans, want %d", len(spans), n)
	}
	var client trace.SpanID
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindClient {
			client = s.SpanContext.SpanID()
		}
	}
	out := map[trace.SpanKind]spanView{}
	for _, s := range spans {
		v := spanView{Name: s.Name, Kind: s.SpanKind, Status: s.Status, Attrs: map[string]string{}, Links: len(s.Links)}
		for _, a := range s.Attributes {
			val := a.Value.Type().String() + "=" + a.Value.Emit()
			if a.Key == "server.port" {
				if a.Value.AsInt64() != int64(p.port) {
					t.Errorf("%v span: got server.port %s, want the server's %d", s.SpanKind, a.Value.Emit(), p.port)
				}
				val = a.Value.Type().String() + "=<server port>"
			}
			v.Attrs[string(a.Key)] = val
		}
		for _, e := range s.Events {
			v.Events = append(v.Events, e.Name)
		}
		v.ChildOfClient = s.SpanKind == trace.SpanKindServer && s.Parent.SpanID() == client && client.IsValid()
		if _, dup := out[s.SpanKind]; dup {
			t.Fatalf("got two %v spans, want one", s.SpanKind)
		}
		out[s.SpanKind] = v
	}
	return out
}

// TestSpansMatchOtelgrpc runs the same calls through grpckit's interceptors
// and through otelgrpc's stats handlers (the version in go.mod, its default
// semantic conventions), each on a bare grpc-go server and client over
// loopback, and compares the spans: names, kinds, status, attributes (keys,
// types and values, ports excepted), events, links and parents.
func TestSpansMatchOtelgrpc(t *testing.T) {
	t.Setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "") // otelgrpc's default conventions

	// A port nobody listens on, the same for both.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := lis.Addr().String()
	_ = lis.Close()

	kit := startTracedPair(t, downAddr,
		func(tp trace.TracerProvider) []grpc.ServerOption {
			return []grpc.ServerOption{
				grpc.ChainUnaryInterceptor(tracing.UnaryServerInterceptor(tracing.WithTracerProvider(tp))),
				grpc.ChainStreamInterceptor(tracing.StreamServerInterceptor(tracing.WithTracerProvider(tp))),
			}
		},
		func(tp trace.TracerProvider) []grpc.DialOption {
			return []grpc.DialOption{
				grpc.WithChainUnaryInterceptor(tracing.UnaryClientInterceptor(tracing.WithTracerProvider(tp))),
				grpc.WithChainStreamInterceptor(tracing.StreamClientInterceptor(tracing.WithTracerProvider(tp))),
			}
		})
	otel := startTracedPair(t, downAddr,
		func(tp trace.TracerProvider) []grpc.ServerOption {
			return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
				otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(tracing.Propagators())))}
		},
		func(tp trace.TracerProvider) []grpc.DialOption {
			return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(tracing.Propagators())))}
		})

	unary := func(msg string, timeout time.Duration) func(*tracedPair) error {
		return func(p *tracedPair) error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err := p.ec.Echo(ctx, &echov1.EchoRequest{Message: msg})
			return err
		}
	}
	serverStream := func(msg string) func(*tracedPair) error {
		return func(p *tracedPair) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := p.ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: msg, Count: 2})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		}
	}
	tests := []struct {
		name  string
		call  func(*tracedPair) error
		spans int
		// clientOnly: the server's outcome is a race (its own deadline
		// or the client's cancellation); compare the client's span.
		clientOnly bool
	}{
		{"unary", unary("hi", 10*time.Second), 2, false},
		{"unary server error", unary("code Internal", 10*time.Second), 2, false},
		{"unary client error only", unary("code NotFound", 10*time.Second), 2, false},
		{"unary error not a status", unary("raw error", 10*time.Second), 2, false},
		{"unary context error not a status", unary("raw deadline", 10*time.Second), 2, false},
		{"unary deadline", unary("sleep 10s", 50*time.Millisecond), 2, true},
		{"unary server down", func(p *tracedPair) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := p.down.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			return err
		}, 1, false},
		{"server stream", serverStream("hi"), 2, false},
		{"server stream error", serverStream("code Unavailable"), 2, false},
		{"client stream", func(p *tracedPair) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := p.ec.ClientStream(ctx)
			if err != nil {
				return err
			}
			for _, m := range []string{"a", "b"} {
				if err := s.Send(&echov1.ClientStreamRequest{Message: m}); err != nil {
					return err
				}
			}
			_, err = s.CloseAndRecv()
			return err
		}, 2, false},
		{"bidi stream", func(p *tracedPair) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := p.ec.BidiStream(ctx)
			if err != nil {
				return err
			}
			if err := s.Send(&echov1.BidiStreamRequest{Message: "a"}); err != nil {
				return err
			}
			if _, err := s.Recv(); err != nil {
				return err
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				return fmt.Errorf("got %v, want io.EOF", err)
			}
			return nil
		}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kerr, oerr := tt.call(kit), tt.call(otel)
			if fmt.Sprint(kerr) != fmt.Sprint(oerr) {
				t.Fatalf("grpckit call: %v; otelgrpc call: %v; want the same", kerr, oerr)
			}
			got, want := kit.views(t, tt.spans), otel.views(t, tt.spans)
			for _, kind := range []trace.SpanKind{trace.SpanKindClient, trace.SpanKindServer} {
				if kind == trace.SpanKindServer && tt.clientOnly {
					continue
				}
				g, gok := got[kind]
				w, wok := want[kind]
				if gok != wok {
					t.Errorf("%v span: got one %v, want one %v", kind, gok, wok)
					continue
				}
				if !gok {
					continue
				}
				if g.Name != w.Name || g.Kind != w.Kind || g.Status != w.Status || g.Links != w.Links ||
					g.ChildOfClient != w.ChildOfClient || !slices.Equal(g.Events, w.Events) {
					t.Errorf("%v span:\n got %+v\nwant %+v", kind, g, w)
				}
				for _, k := range slices.Sorted(maps.Keys(w.Attrs)) {
					if g.Attrs[k] != w.Attrs[k] {
						t.Errorf("%v span attribute %s: got %q, want %q", kind, k, g.Attrs[k], w.Attrs[k])
					}
				}
				for _, k := range slices.Sorted(maps.Keys(g.Attrs)) {
					if _, ok := w.Attrs[k]; !ok {
						t.Errorf("%v span attribute %s: got %q, want none", kind, k, g.Attrs[k])
					}
				}
				if testing.Verbose() {
					t.Logf("%v span %q status %v: %v", kind, w.Name, w.Status, w.Attrs)
				}
			}
		})
	}
}
