package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/logbuf"
	"github.com/grpckit/grpckit/internal/testcert"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAllCallShapes(t *testing.T) {
	pair, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sopt []server.Option
		copt []client.Option
	}{
		{name: "plaintext"},
		{name: "tls", sopt: []server.Option{grpckit.WithTLS(pair.Server)}, copt: []client.Option{grpckit.WithTLS(pair.Client)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &grpckittest.Backend{}
			in := grpckittest.NewServer(t, b.Register, tc.sopt...)
			ec := echov1.NewEchoServiceClient(in.Dial(t, tc.copt...))
			ctx := grpckittest.Context(t, 10*time.Second)

			r, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			if err != nil || r.GetMessage() != "hi" {
				t.Fatalf("Echo = %q, %v; want hi, nil", r.GetMessage(), err)
			}

			ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "x", Count: 3})
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for {
				m, err := ss.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, m.GetIndex())
			}
			if len(got) != 3 || got[2] != 2 {
				t.Fatalf("server stream indexes = %v, want [0 1 2]", got)
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
			cr, err := cs.CloseAndRecv()
			if err != nil || cr.GetMessage() != "abc" || cr.GetCount() != 3 {
				t.Fatalf("client stream = %v, %v; want abc/3", cr, err)
			}

			bs, err := ec.BidiStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []string{"one", "two"} {
				if err := bs.Send(&echov1.BidiStreamRequest{Message: m}); err != nil {
					t.Fatal(err)
				}
				r, err := bs.Recv()
				if err != nil || r.GetMessage() != m {
					t.Fatalf("bidi got %q, %v; want %q", r.GetMessage(), err, m)
				}
			}
			if err := bs.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("bidi end: got %v, want io.EOF", err)
			}
			if n := b.Faults.Calls(); n != 4 {
				t.Fatalf("server saw %d calls, want 4", n)
			}
		})
	}
}

func healthStatus(ctx context.Context, conn grpc.ClientConnInterface, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return r.GetStatus(), err
}

func TestHealthAndShutdownDrain(t *testing.T) {
	// The drain delay leaves time for the three calls below on a loaded
	// machine; the server answers them during it.
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, server.WithDrainDelay(2*time.Second))
	conn := in.Dial(t)
	ctx := grpckittest.Context(t, 10*time.Second)

	for _, svc := range []string{"", "grpckit.echo.v1.EchoService"} {
		st, err := healthStatus(ctx, conn, svc)
		if err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health(%q) = %v, %v; want SERVING", svc, st, err)
		}
	}
	// A Watch stream open during shutdown must not hold GracefulStop.
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch first = %v, %v; want SERVING", r.GetStatus(), err)
	}

	done := make(chan error, 1)
	go func() { done <- in.Server.Shutdown(context.Background()) }()

	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch during shutdown = %v, %v; want NOT_SERVING", r.GetStatus(), err)
	}
	// During the drain delay the server still answers, and says NOT_SERVING.
	st, err := healthStatus(ctx, conn, "")
	if err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health during drain = %v, %v; want NOT_SERVING", st, err)
	}
	if _, err := echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{Message: "still here"}); err != nil {
		t.Fatalf("call during drain: %v, want success", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown blocked by a health Watch stream")
	}
	if err := in.Wait(grpckittest.Context(t, 5*time.Second)); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
}

func TestSetServingStatus(t *testing.T) {
	srv, err := server.New(grpckit.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	srv.SetServingStatus("custom", healthpb.HealthCheckResponse_NOT_SERVING)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		_ = srv.Close()
		<-served
	}()
	conn := grpckittest.Dial(t, "passthrough:///"+lis.Addr().String())
	ctx := grpckittest.Context(t, 10*time.Second)
	if st, err := healthStatus(ctx, conn, "custom"); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("custom before = %v, %v; want NOT_SERVING kept by Serve", st, err)
	}
	srv.SetServingStatus("custom", healthpb.HealthCheckResponse_SERVING)
	if st, err := healthStatus(ctx, conn, "custom"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("custom after = %v, %v; want SERVING", st, err)
	}
	if _, err := healthStatus(ctx, conn, "nope"); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service: got %v, want NotFound", err)
	}
}

func listServices(t *testing.T, conn grpc.ClientConnInterface) ([]string, error) {
	ctx := grpckittest.Context(t, 10*time.Second)
	s, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		// The server may have ended the stream already: its status comes
		// with Recv.
		if _, rerr := s.Recv(); rerr != nil {
			return nil, rerr
		}
		return nil, err
	}
	r, err := s.Recv()
	if err != nil {
		return nil, err
	}
	_ = s.CloseSend()
	var names []string
	for _, svc := range r.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	return names, nil
}

func TestReflection(t *testing.T) {
	t.Run("on by default", func(t *testing.T) {
		in := grpckittest.NewServer(t, new(grpckittest.Backend).Register)
		names, err := listServices(t, in.Dial(t))
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(names, ",")
		for _, want := range []string{"grpckit.echo.v1.EchoService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
			if !strings.Contains(got, want) {
				t.Errorf("reflection lists %s, want it to include %s", got, want)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, server.WithReflection(false))
		_, err := listServices(t, in.Dial(t))
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("reflection off: got %v, want Unimplemented", err)
		}
	})
}

// Recovery is an interceptor in the chain, or, when it would be the only
// one, a wrapper around the registered handlers (recovery.WrapService): the
// same behaviour either way.
func TestPanicRecovery(t *testing.T) {
	t.Run("interceptor", func(t *testing.T) { testPanicRecovery(t) })
	t.Run("only recovery", func(t *testing.T) {
		testPanicRecovery(t, grpckit.WithAccessLog(false), grpckit.WithMetrics(nil))
	})
}

func testPanicRecovery(t *testing.T, opts ...server.Option) {
	logs := &logbuf.Buffer{}
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register, append([]server.Option{grpckit.WithLogger(slog.New(slog.NewJSONHandler(logs, nil)))}, opts...)...)
	ec := echov1.NewEchoServiceClient(in.Dial(t))
	ctx := grpckittest.Context(t, 10*time.Second)

	// The unary call's handler panics, then the stream's.
	b.Faults.Next(2, grpckittest.Fault{Panic: true})
	_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "panic"})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("panicking unary call: got %v, want Internal \"internal error\"", err)
	}
	bs, err := ec.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The handler panics as the stream starts: the server may have ended
	// the stream before the message goes out (io.EOF); its status comes
	// with Recv.
	if err := bs.Send(&echov1.BidiStreamRequest{Message: "panic"}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if _, err := bs.Recv(); status.Code(err) != codes.Internal || strings.Contains(err.Error(), "goroutine") {
		t.Fatalf("panicking stream: got %v, want Internal without a stack", err)
	}
	if r, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "after"}); err != nil || r.GetMessage() != "after" {
		t.Fatalf("call after panic = %v, %v; want success", r, err)
	}
	out := logs.String()
	for _, want := range []string{`"grpc.method":"Echo"`, `"grpc.method":"BidiStream"`, "grpckittest: injected panic", "goroutine ",
		"grpckittest.(*Backend).Echo", "grpckittest.(*Backend).BidiStream"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestShutdownLetsInFlightFinish(t *testing.T) {
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register)
	conn := in.Dial(t)
	ec := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 10*time.Second)
	if err := conn.WaitForReady(ctx); err != nil {
		t.Fatal(err)
	}
	b.Faults.Next(1, grpckittest.Fault{Delay: 400 * time.Millisecond})
	slow := make(chan error, 1)
	go func() {
		_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "slow"})
		slow <- err
	}()
	wait.For(t, 5*time.Second, "the slow call to arrive", func() bool { return b.Faults.Calls() == 1 })

	done := make(chan error, 1)
	go func() { done <- in.Server.Shutdown(ctx) }()
	// Once GracefulStop runs, new calls are refused (fail fast, no retry).
	wait.For(t, 5*time.Second, "new calls to be refused", func() bool {
		_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "new"})
		return status.Code(err) == codes.Unavailable
	})
	if err := <-slow; err != nil {
		t.Fatalf("in-flight call: %v, want success", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
	if err := in.Wait(grpckittest.Context(t, 5*time.Second)); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
}

func TestShutdownDeadlineForcesStop(t *testing.T) {
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register)
	ec := echov1.NewEchoServiceClient(in.Dial(t))
	ctx := grpckittest.Context(t, 20*time.Second)
	b.Faults.Next(1, grpckittest.Fault{Hang: true})
	slow := make(chan error, 1)
	go func() {
		_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hang"})
		slow <- err
	}()
	wait.For(t, 5*time.Second, "the slow call to arrive", func() bool { return b.Faults.Calls() == 1 })

	sctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := in.Server.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("forced Shutdown took %v, want about 200ms", d)
	}
	if err := <-slow; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Fatalf("cut call: got %v, want Unavailable or Canceled", err)
	}
}

func TestServeAfterClose(t *testing.T) {
	srv, err := server.New(grpckit.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(lis); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Close = %v, want ErrServerClosed", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after Close = %v, want nil", err)
	}
}

func TestMaxRecvMsgSize(t *testing.T) {
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithMaxRecvMsgSize(1024))
	ec := echov1.NewEchoServiceClient(in.Dial(t))
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: strings.Repeat("x", 2048)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: got %v, want ResourceExhausted", err)
	}
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "small"}); err != nil {
		t.Fatalf("small request: %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  server.Option
		want string
	}{
		{"nil logger", grpckit.WithLogger(nil), "nil logger"},
		{"nil tls", grpckit.WithTLS(nil), "nil *tls.Config"},
		{"nil creds", grpckit.WithTransportCredentials(nil), "nil credentials"},
		{"zero recv", grpckit.WithMaxRecvMsgSize(0), "not a positive size"},
		{"negative send", grpckit.WithMaxSendMsgSize(-1), "not a positive size"},
		{"negative drain", server.WithDrainDelay(-time.Second), "negative delay"},
		{"short order", server.WithOrder(server.SlotUser), "want all 8"},
		{"repeated slot", server.WithOrder(server.SlotUser, server.SlotUser, server.SlotAuth, server.SlotLimit, server.SlotLogging, server.SlotMetrics, server.SlotTracing, server.SlotRecovery), "appears twice"},
		{"unknown slot", server.WithUnaryInterceptor(server.Slot(42)), "unknown slot"},
		{"nil interceptor", server.WithStreamInterceptor(server.SlotUser, nil), "nil interceptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := server.New(tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) || srv != nil {
				t.Fatalf("New = %v, %v; want nil and an error containing %q", srv, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "server: ") && !strings.HasPrefix(err.Error(), "grpckit: ") {
				t.Fatalf("error %q lacks the server: or grpckit: prefix", err)
			}
		})
	}
}

// With recovery as grpckit's only unary interceptor (everything else off),
// panics are still recovered wherever they happen: in a handler, in a raw
// grpc-go unary or stream interceptor given through WithServerOptions, and
// in an UnknownServiceHandler.
func TestOnlyRecoveryCoversRawOptions(t *testing.T) {
	panicky := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if r, ok := req.(*echov1.EchoRequest); ok && r.GetMessage() == "interceptor panic" {
			panic("unary interceptor")
		}
		return h(ctx, req)
	}
	panickyStream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod == "/grpckit.echo.v1.EchoService/ServerStream" {
			panic("stream interceptor")
		}
		return h(srv, ss)
	}
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register, grpckit.WithAccessLog(false), grpckit.WithMetrics(nil),
		grpckit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		server.WithServerOptions(grpc.UnaryInterceptor(panicky), grpc.ChainStreamInterceptor(panickyStream),
			grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error { panic("unknown service") })))
	conn := in.Dial(t)
	ec := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 10*time.Second)
	b.Faults.Next(1, grpckittest.Fault{Panic: true}) // the handler of the first call
	for _, msg := range []string{"panic", "interceptor panic"} {
		if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: msg}); status.Code(err) != codes.Internal {
			t.Errorf("unary %q: got %v, want Internal", msg, err)
		}
	}
	ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "hi"})
	if err == nil {
		_, err = ss.Recv()
	}
	if status.Code(err) != codes.Internal {
		t.Errorf("stream through a panicking interceptor: got %v, want Internal", err)
	}
	err = conn.Invoke(ctx, "/no.Such/Method", &echov1.EchoRequest{}, &echov1.EchoResponse{})
	if status.Code(err) != codes.Internal {
		t.Errorf("unknown service: got %v, want Internal", err)
	}
	if r, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "after"}); err != nil || r.GetMessage() != "after" {
		t.Fatalf("call after the panics = %v, %v; want success", r, err)
	}
}
