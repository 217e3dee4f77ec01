package grpckittest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/testcert"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = grpckit.WithAccessLog(false)

// unary calls f's unary interceptor with a handler that answers "ok".
func unary(ctx context.Context, f *grpckittest.Faults) (any, error) {
	return f.UnaryServerInterceptor()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"},
		func(context.Context, any) (any, error) { return "ok", nil })
}

func codesOf(t *testing.T, f *grpckittest.Faults, n int) []codes.Code {
	t.Helper()
	out := make([]codes.Code, n)
	for i := range out {
		_, err := unary(context.Background(), f)
		out[i] = status.Code(err)
	}
	return out
}

func TestFaultsSchedule(t *testing.T) {
	u, na, ok := codes.Unavailable, codes.NotFound, codes.OK
	for _, tc := range []struct {
		name    string
		program func(*grpckittest.Faults)
		want    []codes.Code
	}{
		{"zero value", func(*grpckittest.Faults) {}, []codes.Code{ok, ok}},
		{"next", func(f *grpckittest.Faults) { f.Next(2, grpckittest.Fault{Code: u}) }, []codes.Code{u, u, ok}},
		{"next queued in order", func(f *grpckittest.Faults) {
			f.Next(1, grpckittest.Fault{Code: u})
			f.Next(2, grpckittest.Fault{Code: na})
		}, []codes.Code{u, na, na, ok}},
		{"next zero", func(f *grpckittest.Faults) { f.Next(0, grpckittest.Fault{Code: u}) }, []codes.Code{ok}},
		{"always", func(f *grpckittest.Faults) { f.Always(grpckittest.Fault{Code: u}) }, []codes.Code{u, u, u}},
		{"next before always", func(f *grpckittest.Faults) {
			f.Always(grpckittest.Fault{Code: u})
			f.Next(1, grpckittest.Fault{Code: na})
		}, []codes.Code{na, u, u}},
		{"always off", func(f *grpckittest.Faults) {
			f.Always(grpckittest.Fault{Code: u})
			f.Always(grpckittest.Fault{})
		}, []codes.Code{ok, ok}},
		{"sometimes all", func(f *grpckittest.Faults) { f.Sometimes(1, grpckittest.Fault{Code: u}) }, []codes.Code{u, u}},
		{"sometimes none", func(f *grpckittest.Faults) {
			f.Always(grpckittest.Fault{Code: u})
			f.Sometimes(0, grpckittest.Fault{Code: u})
		}, []codes.Code{ok, ok}},
		{"reset", func(f *grpckittest.Faults) {
			f.Always(grpckittest.Fault{Code: u})
			f.Next(3, grpckittest.Fault{Code: na})
			f.Reset()
		}, []codes.Code{ok, ok}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &grpckittest.Faults{}
			tc.program(f)
			got := codesOf(t, f, len(tc.want))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("codes: got %v, want %v", got, tc.want)
			}
			if n := f.Calls(); n != int64(len(tc.want)) {
				t.Errorf("Calls: got %d, want %d", n, len(tc.want))
			}
		})
	}
}

func TestFaultsSometimesShare(t *testing.T) {
	f := &grpckittest.Faults{}
	f.Sometimes(0.25, grpckittest.Fault{Code: codes.Unavailable})
	const n = 4000
	failed := 0
	for _, c := range codesOf(t, f, n) {
		if c == codes.Unavailable {
			failed++
		}
	}
	// Binomial(4000, 0.25): mean 1000, standard deviation 27.
	if failed < 800 || failed > 1200 {
		t.Errorf("failed calls: got %d of %d, want about 1000", failed, n)
	}
	for _, p := range []float64{-0.1, 1.1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Sometimes(%v): got no panic, want one", p)
				}
			}()
			f.Sometimes(p, grpckittest.Fault{Code: codes.Unavailable})
		}()
	}
}

func TestFaultsWaitAndPanic(t *testing.T) {
	t.Run("delay", func(t *testing.T) {
		f := &grpckittest.Faults{}
		f.Always(grpckittest.Fault{Delay: 50 * time.Millisecond, Code: codes.Aborted})
		start := time.Now()
		_, err := unary(context.Background(), f)
		if d := time.Since(start); d < 50*time.Millisecond || status.Code(err) != codes.Aborted {
			t.Errorf("delayed call: got %v after %v, want Aborted after at least 50ms", err, d)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := unary(ctx, f); status.Code(err) != codes.Canceled {
			t.Errorf("delayed call whose context ends: got %v, want Canceled", err)
		}
	})
	t.Run("hang", func(t *testing.T) {
		f := &grpckittest.Faults{}
		f.Next(1, grpckittest.Fault{Hang: true})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := unary(ctx, f); done <- err }()
		wait.For(t, 5*time.Second, "the hanging call to be counted", func() bool { return f.Calls() == 1 })
		select {
		case err := <-done:
			t.Fatalf("hanging call returned %v before its context ended", err)
		default:
		}
		cancel()
		if err := <-done; status.Code(err) != codes.Canceled {
			t.Errorf("hanging call: got %v, want Canceled", err)
		}
		dctx, dcancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer dcancel()
		f.Next(1, grpckittest.Fault{Hang: true})
		if _, err := unary(dctx, f); status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("hanging call past its deadline: got %v, want DeadlineExceeded", err)
		}
	})
	t.Run("panic", func(t *testing.T) {
		f := &grpckittest.Faults{}
		f.Next(1, grpckittest.Fault{Panic: true})
		func() {
			defer func() {
				if r := recover(); r != "grpckittest: injected panic" {
					t.Errorf("recovered %v, want the injected panic", r)
				}
			}()
			_, _ = unary(context.Background(), f)
		}()
		if _, err := unary(context.Background(), f); err != nil {
			t.Errorf("call after the panic: got %v, want success", err)
		}
	})
}

// The interceptors on a bare grpc-go server, in front of a service that
// knows nothing of the kit.
func TestFaultsInterceptorsOnBareGRPC(t *testing.T) {
	f := &grpckittest.Faults{}
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(f.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(f.StreamServerInterceptor()))
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	hc := healthpb.NewHealthClient(cc)
	ctx := grpckittest.Context(t, 10*time.Second)

	f.Next(1, grpckittest.Fault{Code: codes.PermissionDenied})
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(err.Error(), "grpckittest: injected fault") {
		t.Errorf("faulty unary call: got %v, want PermissionDenied with the injected message", err)
	}
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("next unary call: got %v, %v; want SERVING", r, err)
	}
	f.Next(1, grpckittest.Fault{Code: codes.ResourceExhausted})
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = w.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("faulty stream: got %v, want ResourceExhausted", err)
	}
	w, err = hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("next stream: got %v, %v; want SERVING", r, err)
	}
	if n := f.Calls(); n != 4 {
		t.Errorf("Calls: got %d, want 4", n)
	}
}

func echoAll(t *testing.T, ec echov1.EchoServiceClient) {
	t.Helper()
	ctx := grpckittest.Context(t, 10*time.Second)
	if r, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil || r.GetMessage() != "hi" {
		t.Fatalf("Echo: got %v, %v; want hi", r, err)
	}
	ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "x", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s%d", m.GetMessage(), m.GetIndex()))
	}
	if strings.Join(got, ",") != "x0,x1,x2" {
		t.Fatalf("ServerStream: got %v, want [x0 x1 x2]", got)
	}
	cs, err := ec.ClientStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if err := cs.Send(&echov1.ClientStreamRequest{Message: m}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := cs.CloseAndRecv(); err != nil || r.GetMessage() != "abc" || r.GetCount() != 3 {
		t.Fatalf("ClientStream: got %v, %v; want abc, 3", r, err)
	}
	bs, err := ec.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two"} {
		if err := bs.Send(&echov1.BidiStreamRequest{Message: m}); err != nil {
			t.Fatal(err)
		}
		if r, err := bs.Recv(); err != nil || r.GetMessage() != m {
			t.Fatalf("BidiStream: got %v, %v; want %s", r, err, m)
		}
	}
	_ = bs.CloseSend()
	if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("BidiStream end: got %v, want io.EOF", err)
	}
}

func TestBackend(t *testing.T) {
	b := &grpckittest.Backend{}
	srv := grpckittest.NewBufconnServer(t, b.Register, quiet)
	ec := echov1.NewEchoServiceClient(srv.Dial(t, quiet))
	echoAll(t, ec)
	if n := b.Faults.Calls(); n != 4 {
		t.Fatalf("Calls after one call of each shape: got %d, want 4", n)
	}

	ctx := grpckittest.Context(t, 10*time.Second)
	ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Count: -1})
	if err == nil {
		_, err = ss.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("negative count: got %v, want InvalidArgument", err)
	}

	// Each shape suffers its fault when it starts.
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	streams := map[string]func() error{
		"Echo": func() error { _, err := ec.Echo(ctx, &echov1.EchoRequest{}); return err },
		"ServerStream": func() error {
			s, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Count: 1})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
		"ClientStream": func() error {
			s, err := ec.ClientStream(ctx)
			if err == nil {
				_, err = s.CloseAndRecv()
			}
			return err
		},
		"BidiStream": func() error {
			s, err := ec.BidiStream(ctx)
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
	}
	for name, call := range streams {
		if err := call(); status.Code(err) != codes.Unavailable {
			t.Errorf("%s with a fault: got %v, want Unavailable", name, err)
		}
	}
	b.Faults.Always(grpckittest.Fault{Panic: true})
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{}); status.Code(err) != codes.Internal {
		t.Errorf("panicking call on a grpckit server: got %v, want Internal", err)
	}
}

func TestBackendHandler(t *testing.T) {
	b := &grpckittest.Backend{Handler: func(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		return &echov1.EchoResponse{Message: strings.ToUpper(req.GetMessage())}, nil
	}}
	b.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
	ec := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register, quiet).Dial(t, quiet))
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); status.Code(err) != codes.Unavailable {
		t.Errorf("first call: got %v, want the fault's Unavailable", err)
	}
	if r, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil || r.GetMessage() != "HI" {
		t.Errorf("second call: got %v, %v; want HI from the handler", r, err)
	}
}

func TestServer(t *testing.T) {
	pair, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		start func(testing.TB, func(grpc.ServiceRegistrar), ...server.Option) *grpckittest.Server
		sopts []server.Option
		copts []client.Option
	}{
		{"tcp", grpckittest.NewServer, nil, nil},
		{"tcp tls", grpckittest.NewServer, []server.Option{grpckit.WithTLS(pair.Server)}, []client.Option{grpckit.WithTLS(pair.Client)}},
		{"bufconn", grpckittest.NewBufconnServer, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &grpckittest.Backend{}
			srv := tc.start(t, b.Register, append(tc.sopts, quiet)...)
			if tc.name == "bufconn" {
				if srv.Addr != "bufconn" {
					t.Errorf("Addr: got %q, want bufconn", srv.Addr)
				}
			} else if host, _, err := net.SplitHostPort(srv.Addr); err != nil || host != "127.0.0.1" {
				t.Errorf("Addr: got %q, want 127.0.0.1:port", srv.Addr)
			}
			echoAll(t, echov1.NewEchoServiceClient(srv.Dial(t, append(tc.copts, quiet)...)))

			ctx := grpckittest.Context(t, 10*time.Second)
			short, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			if err := srv.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Wait while serving: got %v, want context.DeadlineExceeded", err)
			}
			if err := srv.Server.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := srv.Wait(ctx); !errors.Is(err, server.ErrServerClosed) {
				t.Fatalf("Wait after Shutdown: got %v, want server.ErrServerClosed", err)
			}
		})
	}
}

// A server and its clients stop when the (sub)test that started them
// ends; goleak checks that nothing they started survives.
func TestServerStopsAtCleanup(t *testing.T) {
	var srv *grpckittest.Server
	var conn *client.Conn
	t.Run("inner", func(t *testing.T) {
		srv = grpckittest.NewServer(t, (&grpckittest.Backend{}).Register, quiet)
		conn = srv.Dial(t, quiet)
		if err := conn.WaitForReady(grpckittest.Context(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	})
	if err := srv.Wait(grpckittest.Context(t, 10*time.Second)); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after the subtest: got %v, want server.ErrServerClosed", err)
	}
	if err := conn.WaitForReady(grpckittest.Context(t, 10*time.Second)); !errors.Is(err, client.ErrConnClosed) {
		t.Fatalf("client after the subtest: got %v, want client.ErrConnClosed", err)
	}
	if _, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		t.Fatalf("%s still accepts connections after the subtest", srv.Addr)
	}
}

// fatalTB records a fatal failure and stops the function, as t.Fatalf does.
type fatalTB struct {
	testing.TB
	msg string
}

type fatal struct{}

func (f *fatalTB) Helper()        {}
func (f *fatalTB) Cleanup(func()) {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatal{})
}

func fails(f func(tb testing.TB)) (msg string) {
	tb := &fatalTB{}
	defer func() {
		if r := recover(); r != nil && r != (fatal{}) {
			panic(r)
		}
		msg = tb.msg
	}()
	f(tb)
	return ""
}

func TestBadOptionsFailTheTest(t *testing.T) {
	if msg := fails(func(tb testing.TB) { grpckittest.NewServer(tb, nil, grpckit.WithLogger(nil)) }); !strings.Contains(msg, "nil logger") {
		t.Errorf("NewServer with a bad option: got failure %q, want one naming the nil logger", msg)
	}
	if msg := fails(func(tb testing.TB) { grpckittest.Dial(tb, "passthrough:///x", client.WithBalancer("nope")) }); !strings.Contains(msg, "nope") {
		t.Errorf("Dial with a bad option: got failure %q, want one naming the balancer", msg)
	}
}

func TestSource(t *testing.T) {
	a, b := &grpckittest.Backend{}, &grpckittest.Backend{}
	srvA := grpckittest.NewServer(t, a.Register, quiet)
	srvB := grpckittest.NewServer(t, b.Register, quiet)
	src := &grpckittest.Source{}
	rb, err := resolver.NewBuilder("kit", src)
	if err != nil {
		t.Fatal(err)
	}
	dial := func() (*client.Conn, echov1.EchoServiceClient) {
		conn := grpckittest.Dial(t, "kit:///echo", quiet, client.WithDialOptions(grpc.WithResolvers(rb)))
		conn.Connect()
		return conn, echov1.NewEchoServiceClient(conn)
	}
	call := func(ec echov1.EchoServiceClient) error {
		_, err := ec.Echo(grpckittest.Context(t, 5*time.Second), &echov1.EchoRequest{Message: "hi"})
		return err
	}
	conn, ec := dial()
	wait.For(t, 10*time.Second, "the resolver to watch", func() bool { return len(src.Watching()) == 1 })
	if tg := src.Watching()[0]; tg.Scheme != "kit" || tg.Service != "echo" {
		t.Errorf("watched target: got %+v, want scheme kit, service echo", tg)
	}

	// Before the first answer, errors reach the calls.
	src.ReportError(errors.New("registry down"))
	if err := call(ec); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "registry down") {
		t.Fatalf("call before the first answer: got %v, want Unavailable naming the error", err)
	}
	src.Replace(resolver.Endpoint{Addr: srvA.Addr})
	wait.For(t, 10*time.Second, "calls to reach a", func() bool { return call(ec) == nil && a.Faults.Calls() > 0 })

	// After it, errors keep the endpoints.
	src.ReportError(errors.New("registry down again"))
	if err := call(ec); err != nil {
		t.Fatalf("call while the registry is down: got %v, want success", err)
	}

	// Changes, then a new set.
	src.Update(resolver.Change{Key: srvB.Addr, Endpoint: resolver.Endpoint{Addr: srvB.Addr}}, resolver.Change{Key: srvA.Addr, Delete: true})
	wait.For(t, 10*time.Second, "calls to reach b", func() bool { return call(ec) == nil && b.Faults.Calls() > 0 })

	// A client built later starts from the latest state.
	_, late := dial()
	before := b.Faults.Calls()
	if err := call(late); err != nil || b.Faults.Calls() != before+1 {
		t.Fatalf("late client: got %v and %d calls on b, want success on b", err, b.Faults.Calls()-before)
	}

	src.Replace()
	wait.For(t, 10*time.Second, "calls to fail without instances", func() bool { return status.Code(call(ec)) == codes.Unavailable })

	_ = conn.Close()
	wait.For(t, 10*time.Second, "one resolver left", func() bool { return len(src.Watching()) == 1 })
}
