package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/baregrpc"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// tracedPair is a bare grpc-go echo server and a client of it, both traced
// one way, recording their spans; down is a client of an address nobody
// listens on.
type tracedPair struct {
	exp      *tracetest.InMemoryExporter
	backend  *grpckittest.Backend
	ec, down echov1.EchoServiceClient
	port     int // the server's
}

func startTracedPair(t *testing.T, downAddr string, srvOpts func(trace.TracerProvider) []grpc.ServerOption, dialOpts func(trace.TracerProvider) []grpc.DialOption) *tracedPair {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := &grpckittest.Backend{Handler: rawErrors}
	addr := baregrpc.Serve(t, b.Register, srvOpts(tp)...)
	_, port, _ := net.SplitHostPort(addr)
	p := &tracedPair{exp: exp, backend: b,
		ec:   echov1.NewEchoServiceClient(baregrpc.Dial(t, addr, dialOpts(tp)...)),
		down: echov1.NewEchoServiceClient(baregrpc.Dial(t, downAddr, dialOpts(tp)...))}
	p.port, _ = strconv.Atoi(port)
	return p
}

// rawErrors echoes, but for two messages it fails with an error that is no
// gRPC status, which grpc-go converts.
func rawErrors(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	switch req.GetMessage() {
	case "raw error":
		return nil, errors.New("not a status")
	case "raw deadline":
		return nil, fmt.Errorf("waiting: %w", context.DeadlineExceeded)
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
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
			val := a.Value.Type().String() + "=" + a.Value.String()
			if a.Key == "server.port" {
				if a.Value.AsInt64() != int64(p.port) {
					t.Errorf("%v span: got server.port %s, want the server's %d", s.SpanKind, a.Value.String(), p.port)
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

	// A port that refuses connections, the same for both. A port whose
	// listener was closed could be taken again by the servers started
	// next (or another test's), which once made the "down" calls succeed.
	downAddr := refusingAddr(t)

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
		fault grpckittest.Fault // of the call's handler
		call  func(*tracedPair) error
		spans int
		// clientOnly: the server's outcome is a race (its own deadline
		// or the client's cancellation); compare the client's span. The
		// client's error message is part of the race too (its own
		// deadline, or the server's RST_STREAM at the server's deadline,
		// whichever lands first): compare its code, and the client span's
		// status code.
		clientOnly bool
	}{
		{"unary", grpckittest.Fault{}, unary("hi", 10*time.Second), 2, false},
		{"unary server error", grpckittest.Fault{Code: codes.Internal}, unary("hi", 10*time.Second), 2, false},
		{"unary client error only", grpckittest.Fault{Code: codes.NotFound}, unary("hi", 10*time.Second), 2, false},
		{"unary error not a status", grpckittest.Fault{}, unary("raw error", 10*time.Second), 2, false},
		{"unary context error not a status", grpckittest.Fault{}, unary("raw deadline", 10*time.Second), 2, false},
		// The handler hangs until the call's context ends, so the call
		// always ends at its deadline; the deadline must leave room for the
		// call to reach the server first (on a loaded machine 50 ms did
		// not: the server never saw the call and made no span).
		{"unary deadline", grpckittest.Fault{Hang: true}, unary("hi", time.Second), 2, true},
		{"unary server down", grpckittest.Fault{}, func(p *tracedPair) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := p.down.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			return err
		}, 1, false},
		{"server stream", grpckittest.Fault{}, serverStream("hi"), 2, false},
		{"server stream error", grpckittest.Fault{Code: codes.Unavailable}, serverStream("hi"), 2, false},
		{"client stream", grpckittest.Fault{}, func(p *tracedPair) error {
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
		{"bidi stream", grpckittest.Fault{}, func(p *tracedPair) error {
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
			for _, p := range []*tracedPair{kit, otel} {
				p.backend.Faults.Always(tt.fault)
				t.Cleanup(p.backend.Faults.Reset)
			}
			kerr, oerr := tt.call(kit), tt.call(otel)
			got, want := kit.views(t, tt.spans), otel.views(t, tt.spans)
			if tt.clientOnly {
				if status.Code(kerr) != status.Code(oerr) {
					t.Fatalf("grpckit call: %v; otelgrpc call: %v; want the same code", kerr, oerr)
				}
				for _, v := range []map[trace.SpanKind]spanView{got, want} {
					if s, ok := v[trace.SpanKindClient]; ok {
						s.Status.Description = "" // the error message: see clientOnly
						v[trace.SpanKindClient] = s
					}
				}
			} else if fmt.Sprint(kerr) != fmt.Sprint(oerr) {
				t.Fatalf("grpckit call: %v; otelgrpc call: %v; want the same", kerr, oerr)
			}
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

// refusingAddr returns a loopback address that refuses connections: a
// socket bound to the port without listening, which keeps any other
// listener from taking the port until the test ends.
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
