package tracing_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// handlerPair is grpckit's metrics stats handler and otelgrpc's, each
// recording on a meter provider of its own, for one side (client or
// server).
type handlerPair struct {
	lean, ref     stats.Handler
	leanR, refR   *sdkmetric.ManualReader
	leanMP, refMP *sdkmetric.MeterProvider
}

func newHandlerPair(t testing.TB, client bool) *handlerPair {
	p := &handlerPair{leanR: sdkmetric.NewManualReader(), refR: sdkmetric.NewManualReader()}
	p.leanMP = sdkmetric.NewMeterProvider(sdkmetric.WithReader(p.leanR))
	p.refMP = sdkmetric.NewMeterProvider(sdkmetric.WithReader(p.refR))
	t.Cleanup(func() {
		_ = p.leanMP.Shutdown(context.Background())
		_ = p.refMP.Shutdown(context.Background())
	})
	refOpts := []otelgrpc.Option{otelgrpc.WithMeterProvider(p.refMP), otelgrpc.WithTracerProvider(noop.NewTracerProvider())}
	if client {
		p.lean = tracing.ClientHandler(tracing.WithMeterProvider(p.leanMP))
		p.ref = otelgrpc.NewClientHandler(refOpts...)
	} else {
		p.lean = tracing.ServerHandler(tracing.WithMeterProvider(p.leanMP))
		p.ref = otelgrpc.NewServerHandler(refOpts...)
	}
	return p
}

// check compares what the two handlers recorded: the same scope,
// instrument, buckets, attribute sets, counts and sums.
func (p *handlerPair) check(t testing.TB) bool {
	t.Helper()
	var lean, ref metricdata.ResourceMetrics
	if err := p.leanR.Collect(context.Background(), &lean); err != nil {
		t.Fatal(err)
	}
	if err := p.refR.Collect(context.Background(), &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.ScopeMetrics) != 1 || len(lean.ScopeMetrics) != 1 {
		t.Fatalf("scopes: otelgrpc %d, grpckit %d, want 1 each", len(ref.ScopeMetrics), len(lean.ScopeMetrics))
	}
	return metricdatatest.AssertEqual(t, ref.ScopeMetrics[0], lean.ScopeMetrics[0], metricdatatest.IgnoreTimestamp())
}

// event is one call's stats events, as grpc-go hands them to a handler.
type event struct {
	method string
	addr   net.Addr // the client's remote address, the server's local one; nil: none
	err    error
	dur    time.Duration
}

// feed hands e's events to h in grpc-go's order.
func feed(h stats.Handler, client bool, e event) {
	ctx := h.TagRPC(context.Background(), &stats.RPCTagInfo{FullMethodName: e.method})
	begin := time.Unix(1700000000, 0)
	h.HandleRPC(ctx, &stats.Begin{Client: client, BeginTime: begin})
	if client {
		h.HandleRPC(ctx, &stats.OutHeader{Client: true, FullMethod: e.method, RemoteAddr: e.addr})
	} else {
		h.HandleRPC(ctx, &stats.InHeader{FullMethod: e.method, LocalAddr: e.addr, RemoteAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}})
	}
	h.HandleRPC(ctx, &stats.OutPayload{Client: client})
	h.HandleRPC(ctx, &stats.End{Client: client, BeginTime: begin, EndTime: begin.Add(e.dur), Error: e.err})
}

// sliceAddr is an address of a type that cannot be a map key.
type sliceAddr struct{ parts []string }

func (a sliceAddr) Network() string { return "test" }
func (a sliceAddr) String() string  { return a.parts[0] + ":" + a.parts[1] }

// strAddr is an address whose text is anything.
type strAddr string

func (a strAddr) Network() string { return "test" }
func (a strAddr) String() string  { return string(a) }

// TestRPCMetricsMatchOtelgrpc feeds the same events to grpckit's handlers
// and otelgrpc's: every status code (and beyond), errors that are no
// status, malformed method names, server addresses of every shape, and
// durations in every bucket.
func TestRPCMetricsMatchOtelgrpc(t *testing.T) {
	errs := []error{nil, errors.New("no status"), context.DeadlineExceeded, context.Canceled,
		status.Error(codes.Code(99), "beyond"), &wrapped{status.Error(codes.NotFound, "wrapped")}}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		errs = append(errs, status.Error(c, "x"))
	}
	methods := []string{"/pkg.Svc/Method", "/pkg.Svc/Other", "no-slash", "", "/", "/a/b/c"}
	addrs := []net.Addr{nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, &net.TCPAddr{IP: net.IPv6loopback, Port: 443},
		&net.UnixAddr{Name: "/tmp/s.sock", Net: "unix"}, strAddr("host:notaport"), strAddr("noport"), strAddr(""),
		sliceAddr{[]string{"10.0.0.1", "9"}}}
	durs := []time.Duration{0, time.Millisecond, 30 * time.Millisecond, 700 * time.Millisecond, 3 * time.Second, time.Minute}
	for _, client := range []bool{true, false} {
		p := newHandlerPair(t, client)
		i := 0
		for _, m := range methods {
			for _, a := range addrs {
				for _, err := range errs {
					e := event{method: m, addr: a, err: err, dur: durs[i%len(durs)]}
					i++
					feed(p.lean, client, e)
					feed(p.ref, client, e)
				}
			}
		}
		if !p.check(t) {
			t.Errorf("client=%v: the handlers recorded different metrics", client)
		}
	}
}

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// TestRPCMetricsMatchOtelgrpcLoopback installs both handlers on a real
// server and client and compares what they recorded of real calls: unary
// calls that succeed and fail, an unknown method, a call whose deadline
// passes, and streams.
func TestRPCMetricsMatchOtelgrpcLoopback(t *testing.T) {
	srv, cli := newHandlerPair(t, false), newHandlerPair(t, true)
	b := &grpckittest.Backend{Handler: rawErrors}
	addr := baregrpc.Serve(t, b.Register, grpc.StatsHandler(srv.lean), grpc.StatsHandler(srv.ref))
	conn := baregrpc.Dial(t, addr, grpc.WithStatsHandler(cli.lean), grpc.WithStatsHandler(cli.ref))
	ec := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 10*time.Second)
	for _, msg := range []string{"a", "b", "raw error", "raw deadline"} {
		_, _ = ec.Echo(ctx, &echov1.EchoRequest{Message: msg})
	}
	b.Faults.Next(1, grpckittest.Fault{Code: codes.PermissionDenied})
	_, _ = ec.Echo(ctx, &echov1.EchoRequest{Message: "denied"})
	b.Faults.Next(1, grpckittest.Fault{Hang: true})
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, _ = ec.Echo(short, &echov1.EchoRequest{Message: "late"})
	cancel()
	if err := conn.Invoke(ctx, "/grpckit.echo.v1.EchoService/Nope", &echov1.EchoRequest{}, &echov1.EchoResponse{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: got %v, want Unimplemented", err)
	}
	st, err := ec.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := st.Send(&echov1.BidiStreamRequest{Message: "s"}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.CloseSend()
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream end: got %v, want EOF", err)
	}
	// A handler records a call once it has ended, the server's after its
	// status is sent (the hung call's when its deadline passes): wait for
	// every call in both handlers of each side (8 on the client; 7 on the
	// server, to which the unknown method is no call).
	wait.For(t, 10*time.Second, "every call recorded", func() bool {
		return calls(t, cli.leanR) == 8 && calls(t, cli.refR) == 8 && calls(t, srv.leanR) == 7 && calls(t, srv.refR) == 7
	})
	if !cli.check(t) {
		t.Error("client: the handlers recorded different metrics")
	}
	if !srv.check(t) {
		t.Error("server: the handlers recorded different metrics")
	}
}

// calls returns how many calls r's histograms counted.
func calls(t testing.TB, r *sdkmetric.ManualReader) uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, dp := range h.DataPoints {
					n += dp.Count
				}
			}
		}
	}
	return n
}

// FuzzRPCMetrics: for any method name, server address text and status
// code, grpckit's handlers record what otelgrpc's record.
func FuzzRPCMetrics(f *testing.F) {
	f.Add("/pkg.Svc/Method", "127.0.0.1:80", uint32(0), true)
	f.Add("/a/b", "[::1]:443", uint32(14), false)
	f.Add("nope", "host:port", uint32(99), true)
	f.Add("", "", uint32(2), false)
	f.Add("/x", "a:b:c", uint32(4), true)
	f.Fuzz(func(t *testing.T, method, addr string, code uint32, client bool) {
		p := newHandlerPair(t, client)
		var err error
		if code != 0 {
			err = status.Error(codes.Code(code), "fuzz")
		}
		var a net.Addr
		if addr != "" {
			a = strAddr(addr)
		}
		e := event{method: method, addr: a, err: err, dur: time.Millisecond}
		feed(p.lean, client, e)
		feed(p.ref, client, e)
		if !p.check(t) {
			t.Errorf("method %q, address %q, code %d, client %v: the handlers recorded different metrics", method, addr, code, client)
		}
	})
}

// With OTEL_SEMCONV_STABILITY_OPT_IN asking for otelgrpc's older
// conventions, the handlers are otelgrpc's own and record the older
// metric too (rpc/dup) or instead (rpc/old).
func TestRPCMetricsOldConventions(t *testing.T) {
	for _, tc := range []struct {
		optIn string
		want  []string
	}{
		{"", []string{"rpc.server.call.duration"}},
		{"rpc/dup", []string{"rpc.server.duration", "rpc.server.call.duration"}},
		{"http, rpc/old", []string{"rpc.server.duration"}},
	} {
		t.Run(tc.optIn, func(t *testing.T) {
			t.Setenv("OTEL_SEMCONV_STABILITY_OPT_IN", tc.optIn)
			r := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
			defer func() { _ = mp.Shutdown(context.Background()) }()
			feed(tracing.ServerHandler(tracing.WithMeterProvider(mp)), false, event{method: "/pkg.Svc/M", dur: time.Millisecond})
			var rm metricdata.ResourceMetrics
			if err := r.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					got = append(got, m.Name)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("metrics: got %v, want %v", got, want)
			}
		})
	}
}
