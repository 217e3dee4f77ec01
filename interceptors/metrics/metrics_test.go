package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/metrics"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// constLabels are used on both sides of the compatibility tests, so that
// they cover constant labels too.
var constLabels = prometheus.Labels{"app": "compat"}

// exemplarFn is package metrics' exemplar function, for grpcprom.
func exemplarFn(ctx context.Context) prometheus.Labels {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		return prometheus.Labels{"trace_id": sc.TraceID().String()}
	}
	return nil
}

// interceptors is one implementation's four interceptors.
type interceptors struct {
	us grpc.UnaryServerInterceptor
	ss grpc.StreamServerInterceptor
	uc grpc.UnaryClientInterceptor
	sc grpc.StreamClientInterceptor
}

// reference registers go-grpc-middleware's collectors on reg, configured
// as package metrics configured them before it had its own, and returns
// their interceptors and the server collector.
func reference(t testing.TB, reg prometheus.Registerer) (interceptors, *grpcprom.ServerMetrics) {
	t.Helper()
	sm := grpcprom.NewServerMetrics(
		grpcprom.WithServerCounterOptions(grpcprom.WithConstLabels(constLabels)),
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(metrics.DefaultBuckets()), grpcprom.WithHistogramConstLabels(constLabels)),
	)
	cm := grpcprom.NewClientMetrics(
		grpcprom.WithClientCounterOptions(grpcprom.WithConstLabels(constLabels)),
		grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(metrics.DefaultBuckets()), grpcprom.WithHistogramConstLabels(constLabels)),
	)
	if reg != nil {
		reg.MustRegister(sm, cm)
	}
	ex := grpcprom.WithExemplarFromContext(exemplarFn)
	return interceptors{
		us: sm.UnaryServerInterceptor(ex), ss: sm.StreamServerInterceptor(ex),
		uc: cm.UnaryClientInterceptor(ex), sc: cm.StreamClientInterceptor(ex),
	}, sm
}

// lean registers package metrics' collectors on reg.
func lean(t testing.TB, reg prometheus.Registerer) (interceptors, *metrics.Server) {
	t.Helper()
	s, err := metrics.NewServer(reg, metrics.WithConstLabels(constLabels))
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	c, err := metrics.NewClient(reg, metrics.WithConstLabels(constLabels))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return interceptors{
		us: s.UnaryServerInterceptor(), ss: s.StreamServerInterceptor(),
		uc: c.UnaryClientInterceptor(), sc: c.StreamClientInterceptor(),
	}, s
}

// timing matches the histogram lines whose values depend on timing.
var timing = regexp.MustCompile(`^(grpc_\w+_handling_seconds_(?:bucket|sum)\{[^}]*\}) \S+$`)

// exposition returns g's metrics in the Prometheus text format, with the
// histograms' bucket counts and sums (which depend on timing) masked; their
// label sets and sample counts are kept.
func exposition(t testing.TB, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("Encode: %v", err)
		}
	}
	lines := strings.Split(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = timing.ReplaceAllString(l, "$1 <timing>")
	}
	return strings.Join(lines, "\n")
}

// sameExposition fails the test unless a and b expose the same series.
func sameExposition(t *testing.T, a, b prometheus.Gatherer) {
	t.Helper()
	want, got := exposition(t, a), exposition(t, b)
	if got == want {
		if !strings.Contains(got, "grpc_") {
			t.Fatalf("no grpc series gathered")
		}
		return
	}
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			t.Fatalf("line %d: got %q, want %q (go-grpc-middleware)\n--- lean:\n%s\n--- go-grpc-middleware:\n%s", i+1, g, w, got, want)
		}
	}
}

// sum returns the sum of the values of the counter named name.
func sum(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// settle waits until every call g saw started on the server has ended.
func settle(t testing.TB, g prometheus.Gatherer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		started, handled := sum(t, g, "grpc_server_started_total"), sum(t, g, "grpc_server_handled_total")
		if started == handled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server handled %v calls, want %v (all started)", handled, started)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serve serves an echo backend on a bare grpc-go server on loopback with
// srvOpts and returns a bare client connection with dialOpts, and the
// backend; both end with the test.
func serve(t *testing.T, srvOpts []grpc.ServerOption, dialOpts []grpc.DialOption) (*grpc.ClientConn, *grpckittest.Backend) {
	t.Helper()
	b := &grpckittest.Backend{}
	return baregrpc.Dial(t, baregrpc.Serve(t, b.Register, srvOpts...), dialOpts...), b
}

// wantCode fails the test unless err has code want.
func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: got code %v (%v), want %v", what, got, err, want)
	}
}

// drive makes the calls of the compatibility test on conn, to b.
func drive(t *testing.T, conn *grpc.ClientConn, b *grpckittest.Backend) {
	ctx := grpckittest.Context(t, 10*time.Second)
	ec := echov1.NewEchoServiceClient(conn)

	for range 2 {
		_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		wantCode(t, "unary", err, codes.OK)
	}
	b.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
	_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "fail"})
	wantCode(t, "unary asked to fail", err, codes.Unavailable)

	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	b.Faults.Next(1, grpckittest.Fault{Hang: true})
	_, err = ec.Echo(dctx, &echov1.EchoRequest{Message: "hang"})
	cancel()
	wantCode(t, "unary past its deadline", err, codes.DeadlineExceeded)
	b.Faults.Reset() // in case the call never reached the handler

	err = conn.Invoke(ctx, "/grpckit.echo.v1.EchoService/Nope", &echov1.EchoRequest{}, &echov1.EchoResponse{})
	wantCode(t, "unknown method", err, codes.Unimplemented)
	err = conn.Invoke(ctx, "no-slash", &echov1.EchoRequest{}, &echov1.EchoResponse{})
	wantCode(t, "malformed method", err, codes.Unimplemented)

	bidi, err := ec.BidiStream(ctx)
	wantCode(t, "bidi", err, codes.OK)
	for i := range 3 {
		if err := bidi.Send(&echov1.BidiStreamRequest{Message: fmt.Sprint(i)}); err != nil {
			t.Fatalf("bidi Send: %v", err)
		}
		if _, err := bidi.Recv(); err != nil {
			t.Fatalf("bidi Recv: %v", err)
		}
	}
	if err := bidi.CloseSend(); err != nil {
		t.Fatalf("bidi CloseSend: %v", err)
	}
	if _, err := bidi.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("bidi last Recv: got %v, want io.EOF", err)
	}

	ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "x", Count: 3})
	wantCode(t, "server stream", err, codes.OK)
	n := 0
	for {
		if _, err := ss.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("server stream Recv: %v", err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("server stream: got %d messages, want 3", n)
	}
	// Once more after the end: go-grpc-middleware records the end again.
	if _, err := ss.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("server stream Recv after the end: got %v, want io.EOF", err)
	}

	b.Faults.Next(1, grpckittest.Fault{Code: codes.NotFound})
	ss, err = ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "x", Count: 3})
	wantCode(t, "failing server stream", err, codes.OK)
	_, err = ss.Recv()
	wantCode(t, "failing server stream Recv", err, codes.NotFound)

	cs, err := ec.ClientStream(ctx)
	wantCode(t, "client stream", err, codes.OK)
	for _, m := range []string{"a", "b"} {
		if err := cs.Send(&echov1.ClientStreamRequest{Message: m}); err != nil {
			t.Fatalf("client stream Send: %v", err)
		}
	}
	resp, err := cs.CloseAndRecv()
	wantCode(t, "client stream CloseAndRecv", err, codes.OK)
	if resp.GetCount() != 2 {
		t.Fatalf("client stream: got count %d, want 2", resp.GetCount())
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if bidi, err := ec.BidiStream(cctx); err == nil {
		_, err = bidi.Recv()
		wantCode(t, "bidi on a canceled context", err, codes.Canceled)
	} else {
		wantCode(t, "bidi on a canceled context", err, codes.Canceled)
	}
}

// TestCompatibleLoopback makes the same calls, over a real connection, seen
// by go-grpc-middleware's interceptors recording on one registry and by
// this package's recording on another, and compares the two expositions.
func TestCompatibleLoopback(t *testing.T) {
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a, _ := reference(t, regA)
	b, _ := lean(t, regB)
	conn, backend := serve(t,
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(a.us, b.us), grpc.ChainStreamInterceptor(a.ss, b.ss)},
		[]grpc.DialOption{grpc.WithChainUnaryInterceptor(a.uc, b.uc), grpc.WithChainStreamInterceptor(a.sc, b.sc)})
	drive(t, conn, backend)
	settle(t, regA)
	settle(t, regB)
	// drive's last call, a bidi stream on a canceled context, may reach
	// the server or not, and when it does it may do so after settle
	// returned (its started and handled counts then move after the check),
	// and the two chained interceptors record it one after the other: wait
	// until both registries are settled and agree, then compare (which
	// names the first line that differs if they never do).
	wait.Poll(5*time.Second, func() bool {
		return settled(t, regA) && settled(t, regB) && exposition(t, regA) == exposition(t, regB)
	})
	sameExposition(t, regA, regB)
}

// settled reports whether g's server handled every call it started.
func settled(t testing.TB, g prometheus.Gatherer) bool {
	return sum(t, g, "grpc_server_started_total") == sum(t, g, "grpc_server_handled_total")
}

// fakeServerStream returns scripted results from RecvMsg and SendMsg.
type fakeServerStream struct {
	grpc.ServerStream
	ctx        context.Context
	recv, send []error
}

func (f *fakeServerStream) Context() context.Context { return f.ctx }

func (f *fakeServerStream) RecvMsg(any) error { return next(&f.recv) }

func (f *fakeServerStream) SendMsg(any) error { return next(&f.send) }

// fakeClientStream returns scripted results from RecvMsg and SendMsg.
type fakeClientStream struct {
	grpc.ClientStream
	recv, send []error
}

func (f *fakeClientStream) RecvMsg(any) error { return next(&f.recv) }

func (f *fakeClientStream) SendMsg(any) error { return next(&f.send) }

func next(errs *[]error) error {
	if len(*errs) == 0 {
		return io.EOF
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

// nilStatusError has a nil gRPC status, which status.FromError does not
// accept.
type nilStatusError struct{ err error }

func (e nilStatusError) Error() string { return "nil status: " + e.err.Error() }

func (e nilStatusError) Unwrap() error { return e.err }

func (nilStatusError) GRPCStatus() *status.Status { return nil }

// scenario drives one implementation's interceptors directly.
type scenario func(ctx context.Context, in interceptors)

func unaryServer(method string, err error) scenario {
	return func(ctx context.Context, in interceptors) {
		_, _ = in.us(ctx, "req", &grpc.UnaryServerInfo{FullMethod: method},
			func(context.Context, any) (any, error) { return "resp", err })
	}
}

func unaryClient(method string, err error) scenario {
	return func(ctx context.Context, in interceptors) {
		_ = in.uc(ctx, method, "req", "reply", nil,
			func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return err })
	}
}

func streamServer(info *grpc.StreamServerInfo, recv, send []error, err error) scenario {
	return func(ctx context.Context, in interceptors) {
		fake := &fakeServerStream{ctx: ctx, recv: append([]error(nil), recv...), send: append([]error(nil), send...)}
		_ = in.ss(nil, fake, info, func(_ any, ss grpc.ServerStream) error {
			for range len(recv) {
				_ = ss.RecvMsg(nil)
			}
			for range len(send) {
				_ = ss.SendMsg(nil)
			}
			return err
		})
	}
}

func streamClient(desc *grpc.StreamDesc, startErr error, send, recv []error) scenario {
	return func(ctx context.Context, in interceptors) {
		cs, err := in.sc(ctx, desc, nil, "/svc.S/Stream",
			func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
				if startErr != nil {
					return nil, startErr
				}
				return &fakeClientStream{recv: append([]error(nil), recv...), send: append([]error(nil), send...)}, nil
			})
		if err != nil {
			return
		}
		for range len(send) {
			_ = cs.SendMsg(nil)
		}
		for range len(recv) {
			_ = cs.RecvMsg(nil)
		}
	}
}

// TestCompatibleDirect runs edge cases through both implementations'
// interceptors with fake handlers, streams and invokers, and compares the
// expositions.
func TestCompatibleDirect(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		run  scenario
	}{
		{"unary ok", unaryServer("/svc.S/M", nil)},
		{"unary status", unaryServer("/svc.S/M", status.Error(codes.NotFound, "x"))},
		{"unary wrapped status", unaryServer("/svc.S/M", fmt.Errorf("wrapped: %w", status.Error(codes.Aborted, "x")))},
		{"unary plain error", unaryServer("/svc.S/M", boom)},
		{"unary context canceled", unaryServer("/svc.S/M", context.Canceled)},
		{"unary context deadline", unaryServer("/svc.S/M", fmt.Errorf("late: %w", context.DeadlineExceeded))},
		{"unary nil status", unaryServer("/svc.S/M", nilStatusError{context.Canceled})},
		{"unary wrapped nil status", unaryServer("/svc.S/M", fmt.Errorf("wrapped: %w", nilStatusError{boom}))},
		{"unary non-canonical code", unaryServer("/svc.S/M", status.Error(codes.Code(20), "x"))},
		{"unary no slash", unaryServer("noslash", nil)},
		{"unary extra slash", unaryServer("/a/b/c", nil)},
		{"client unary ok", unaryClient("/svc.S/M", nil)},
		{"client unary error", unaryClient("/svc.S/M", status.Error(codes.Unavailable, "x"))},
		{"client unary plain error", unaryClient("/svc.S/M", boom)},
		{"client unary non-canonical code", unaryClient("/svc.S/M", status.Error(codes.Code(99), "x"))},
		{"server bidi", streamServer(&grpc.StreamServerInfo{FullMethod: "/svc.S/Bidi", IsClientStream: true, IsServerStream: true},
			[]error{nil, nil, io.EOF}, []error{nil, boom}, nil)},
		{"server stream failing", streamServer(&grpc.StreamServerInfo{FullMethod: "/svc.S/SS", IsServerStream: true},
			nil, []error{nil}, status.Error(codes.Internal, "x"))},
		{"server client stream", streamServer(&grpc.StreamServerInfo{FullMethod: "/svc.S/CS", IsClientStream: true},
			[]error{nil, nil}, []error{nil}, nil)},
		{"server stream of no kind", streamServer(&grpc.StreamServerInfo{FullMethod: "/svc.S/None"}, nil, nil, nil)},
		{"client server stream", streamClient(&grpc.StreamDesc{ServerStreams: true}, nil, []error{nil}, []error{nil, nil, io.EOF, io.EOF})},
		{"client server stream failing", streamClient(&grpc.StreamDesc{ServerStreams: true}, nil, nil, []error{nil, status.Error(codes.DataLoss, "x")})},
		{"client client stream", streamClient(&grpc.StreamDesc{ClientStreams: true}, nil, []error{nil, nil, boom}, []error{nil})},
		{"client client stream recv twice", streamClient(&grpc.StreamDesc{ClientStreams: true}, nil, nil, []error{nil, io.EOF})},
		{"client bidi", streamClient(&grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, nil, []error{nil, nil}, []error{nil, io.EOF})},
		{"client stream of no kind", streamClient(&grpc.StreamDesc{}, nil, nil, []error{nil})},
		{"client stream start fails", streamClient(&grpc.StreamDesc{ServerStreams: true}, status.Error(codes.Unavailable, "x"), nil, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
			a, _ := reference(t, regA)
			b, _ := lean(t, regB)
			for range 2 { // the second time through the cache
				tt.run(context.Background(), a)
				tt.run(context.Background(), b)
			}
			sameExposition(t, regA, regB)
		})
	}
}

// TestInitializeMetrics checks that InitializeMetrics creates, at zero,
// every series go-grpc-middleware's does for the echo service, and that
// calls then count from there.
func TestInitializeMetrics(t *testing.T) {
	srv := grpc.NewServer()
	echov1.RegisterEchoServiceServer(srv, &grpckittest.Backend{})
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	_, sm := reference(t, regA)
	b, s := lean(t, regB)
	sm.InitializeMetrics(srv)
	s.InitializeMetrics(srv)
	sameExposition(t, regA, regB)

	mfs, err := regB.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	counts := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			counts[mf.GetName()]++
			if v := m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount()); v != 0 {
				t.Errorf("%s%v: got %v, want 0", mf.GetName(), m.GetLabel(), v)
			}
		}
	}
	want := map[string]int{
		"grpc_server_started_total":      4,
		"grpc_server_handled_total":      4 * 17,
		"grpc_server_msg_received_total": 4,
		"grpc_server_msg_sent_total":     4,
		"grpc_server_handling_seconds":   4,
	}
	for name, n := range want {
		if counts[name] != n {
			t.Errorf("%s: got %d series, want %d", name, counts[name], n)
		}
	}

	_, _ = b.us(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"},
		func(context.Context, any) (any, error) { return nil, status.Error(codes.NotFound, "x") })
	if got := sum(t, regB, "grpc_server_handled_total"); got != 1 {
		t.Fatalf("handled after one call: got %v, want 1", got)
	}
}

// TestSharedRegistry checks that servers (and clients) sharing a registry
// share the series: no registration error, and their counts add up.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	var addrs []string
	for i := range 2 {
		s, err := metrics.NewServer(reg)
		if err != nil {
			t.Fatalf("NewServer %d on the same registry: %v", i+1, err)
		}
		addrs = append(addrs, baregrpc.Serve(t, (&grpckittest.Backend{}).Register,
			grpc.ChainUnaryInterceptor(s.UnaryServerInterceptor()), grpc.ChainStreamInterceptor(s.StreamServerInterceptor())))
	}
	c1, err := metrics.NewClient(reg)
	if err != nil {
		t.Fatalf("first NewClient: %v", err)
	}
	c2, err := metrics.NewClient(reg)
	if err != nil {
		t.Fatalf("second NewClient on the same registry: %v", err)
	}
	ctx := grpckittest.Context(t, 10*time.Second)
	for i, c := range []*metrics.Client{c1, c2} {
		cc := baregrpc.Dial(t, addrs[i], grpc.WithUnaryInterceptor(c.UnaryClientInterceptor()))
		for range 2 + i {
			if _, err := echov1.NewEchoServiceClient(cc).Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
				t.Fatalf("Echo: %v", err)
			}
		}
	}
	settle(t, reg)
	for _, name := range []string{"grpc_server_started_total", "grpc_server_handled_total", "grpc_client_started_total", "grpc_client_handled_total"} {
		if got := sum(t, reg, name); got != 5 {
			t.Errorf("%s: got %v, want 5 (2 calls to one server, 3 to the other)", name, got)
		}
	}
}

// exemplars returns, for every series of g carrying an exemplar, its
// trace_id: counters by name and labels, histograms by name and labels
// with " bucket" (the bucket that holds it follows the call's measured
// duration, which differs between two runs of a call).
func exemplars(t testing.TB, g prometheus.Gatherer) map[string]string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]string{}
	traceID := func(e *dto.Exemplar) string {
		for _, l := range e.GetLabel() {
			if l.GetName() == "trace_id" {
				return l.GetValue()
			}
		}
		return "(no trace_id)"
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName() + labelString(m.GetLabel())
			if e := m.GetCounter().GetExemplar(); e != nil {
				out[key] = traceID(e)
			}
			for _, b := range m.GetHistogram().GetBucket() {
				if e := b.GetExemplar(); e != nil {
					out[key+" bucket"] = traceID(e)
				}
			}
		}
	}
	return out
}

func labelString(ls []*dto.LabelPair) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// TestExemplars checks that the series of a sampled call carry its trace
// id as an exemplar on the same series as go-grpc-middleware's, and that an
// unsampled call leaves none.
func TestExemplars(t *testing.T) {
	tid := trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	sc := func(flags trace.TraceFlags) context.Context {
		return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: flags,
		}))
	}
	calls := []scenario{
		unaryServer("/svc.S/M", nil),
		unaryClient("/svc.S/M", status.Error(codes.Unavailable, "x")),
		streamServer(&grpc.StreamServerInfo{FullMethod: "/svc.S/Bidi", IsClientStream: true, IsServerStream: true}, []error{nil}, []error{nil}, nil),
		streamClient(&grpc.StreamDesc{ServerStreams: true}, nil, []error{nil}, []error{nil, io.EOF}),
	}
	tests := []struct {
		name    string
		ctx     context.Context
		sampled bool
	}{
		{"sampled", sc(trace.FlagsSampled), true},
		{"unsampled", sc(0), false},
		{"no span", context.Background(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
			a, _ := reference(t, regA)
			b, _ := lean(t, regB)
			for _, call := range calls {
				call(tt.ctx, a)
				call(tt.ctx, b)
			}
			got, want := exemplars(t, regB), exemplars(t, regA)
			if !tt.sampled {
				if len(got) != 0 {
					t.Fatalf("got exemplars %v, want none", got)
				}
				return
			}
			if len(got) != len(want) {
				t.Errorf("got %d series with exemplars, want %d (go-grpc-middleware): got %v, want %v", len(got), len(want), got, want)
			}
			for k, v := range want {
				if got[k] != tid.String() {
					t.Errorf("exemplar of %s: got trace_id %q, want %q (go-grpc-middleware has %q)", k, got[k], tid.String(), v)
				}
			}
			for _, k := range []string{
				`grpc_server_started_total{app=compat,grpc_method=M,grpc_service=svc.S,grpc_type=unary}`,
				`grpc_client_handled_total{app=compat,grpc_code=Unavailable,grpc_method=M,grpc_service=svc.S,grpc_type=unary}`,
				`grpc_server_msg_sent_total{app=compat,grpc_method=Bidi,grpc_service=svc.S,grpc_type=bidi_stream}`,
			} {
				if got[k] != tid.String() {
					t.Errorf("exemplar of %s: got trace_id %q, want %q", k, got[k], tid.String())
				}
			}
		})
	}
}

// TestOptions checks the constructors' errors.
func TestOptions(t *testing.T) {
	tests := []struct {
		name string
		reg  prometheus.Registerer
		opts []metrics.Option
		want error // nil: no error; errAny: some error
	}{
		{"defaults", prometheus.NewRegistry(), nil, nil},
		{"nil registerer", nil, nil, metrics.ErrNilRegisterer},
		{"nil option", prometheus.NewRegistry(), []metrics.Option{nil}, nil},
		{"default buckets", prometheus.NewRegistry(), []metrics.Option{metrics.WithBuckets(nil)}, nil},
		{"decreasing buckets", prometheus.NewRegistry(), []metrics.Option{metrics.WithBuckets([]float64{1, 0.5})}, metrics.ErrInvalid},
		{"repeated bucket", prometheus.NewRegistry(), []metrics.Option{metrics.WithBuckets([]float64{1, 1})}, metrics.ErrInvalid},
		{"le label", prometheus.NewRegistry(), []metrics.Option{metrics.WithConstLabels(prometheus.Labels{"le": "1"})}, metrics.ErrInvalid},
		{"bad label value", prometheus.NewRegistry(), []metrics.Option{metrics.WithConstLabels(prometheus.Labels{"app": "\xff"})}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errS := metrics.NewServer(tt.reg, tt.opts...)
			_, errC := metrics.NewClient(tt.reg, tt.opts...)
			for side, err := range map[string]error{"NewServer": errS, "NewClient": errC} {
				switch {
				case tt.want == nil && err != nil:
					t.Errorf("%s: got %v, want no error", side, err)
				case tt.want == errAny && err == nil:
					t.Errorf("%s: got no error, want one", side)
				case tt.want != nil && tt.want != errAny && !errors.Is(err, tt.want):
					t.Errorf("%s: got %v, want %v", side, err, tt.want)
				}
			}
		})
	}
}

var errAny = errors.New("any error")

// TestNoAllocs checks that a unary call, server and client side, allocates
// nothing once its method's series exist.
func TestNoAllocs(t *testing.T) {
	reg := prometheus.NewRegistry()
	in, _ := lean(t, reg)
	run := pass(in)
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("allocations per unary call (server and client): got %v, want 0", n)
	}
	// Every call was counted.
	if got := sum(t, reg, "grpc_server_handled_total"); got != 102 {
		t.Fatalf("server handled: got %v, want 102", got)
	}
}

// pass returns one unary call through in's client and server interceptors,
// with a no-op handler.
func pass(in interceptors) func() {
	ctx := context.Background()
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	invoker := func(ctx context.Context, _ string, req, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		_, err := in.us(ctx, req, info, handler)
		return err
	}
	return func() { _ = in.uc(ctx, info.FullMethod, nil, nil, nil, invoker) }
}
