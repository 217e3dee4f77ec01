package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNoSilentInsecureDefault(t *testing.T) {
	conn, err := client.New("passthrough:///127.0.0.1:1")
	if !errors.Is(err, client.ErrNoCredentials) || conn != nil {
		t.Fatalf("New without credentials = %v, %v; want nil, ErrNoCredentials", conn, err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string
		opt    client.Option
		want   string
	}{
		{"unknown balancer", "passthrough:///x", client.WithBalancer("nope"), `no balancer named "nope"`},
		{"negative timeout", "passthrough:///x", client.WithDefaultTimeout(-time.Second), "negative timeout"},
		{"nil creds", "passthrough:///x", grpckit.WithTransportCredentials(nil), "nil credentials"},
		{"zero recv", "passthrough:///x", grpckit.WithMaxRecvMsgSize(0), "not a positive size"},
		{"bad order", "passthrough:///x", client.WithOrder(client.SlotUser), "want all 8"},
		{"nil interceptor", "passthrough:///x", client.WithUnaryInterceptor(client.SlotUser, nil), "nil interceptor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := client.New(tc.target, grpckit.WithInsecure(), tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) || conn != nil {
				t.Fatalf("New = %v, %v; want nil and an error containing %q", conn, err, tc.want)
			}
		})
	}
}

// deadlineSeen returns a server option that records the deadline each call
// arrives with.
func deadlineSeen(mu *sync.Mutex, got *[]time.Duration) server.Option {
	return server.WithUnaryInterceptor(server.SlotUser, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		d := time.Duration(-1)
		if dl, ok := ctx.Deadline(); ok {
			d = time.Until(dl)
		}
		mu.Lock()
		*got = append(*got, d)
		mu.Unlock()
		return h(ctx, req)
	})
}

func TestDefaultTimeout(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Duration
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register, deadlineSeen(&mu, &seen))
	conn := in.Dial(t, client.WithDefaultTimeout(200*time.Millisecond))
	ec := echov1.NewEchoServiceClient(conn)
	// Connected first, so that the 200 ms are the call's, not the dial's.
	if err := conn.WaitForReady(grpckittest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	b.Faults.Next(1, grpckittest.Fault{Delay: 5 * time.Second})
	_, err := ec.Echo(context.Background(), &echov1.EchoRequest{Message: "slow"})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call without deadline: got %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d >= 5*time.Second {
		t.Fatalf("default timeout took %v: the call waited for the server's 5s", d)
	}
	// A caller's own deadline, even a longer one, is kept and reaches the server.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Faults.Reset()
	b.Faults.Next(1, grpckittest.Fault{Delay: 300 * time.Millisecond})
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "slower than the default"}); err != nil {
		t.Fatalf("call with a 5s deadline: %v, want success", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] <= 0 || seen[0] > 200*time.Millisecond || seen[1] < 4*time.Second {
		t.Fatalf("server saw deadlines %v, want ~200ms then ~5s", seen)
	}
}

func TestNoDefaultTimeout(t *testing.T) {
	var mu sync.Mutex
	var seen []time.Duration
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, deadlineSeen(&mu, &seen))
	ec := echov1.NewEchoServiceClient(in.Dial(t, client.WithDefaultTimeout(0)))
	if _, err := ec.Echo(context.Background(), &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != -1 {
		t.Fatalf("server saw %v, want no deadline", seen)
	}
}

func TestWaitForReadyAndClose(t *testing.T) {
	in := grpckittest.NewServer(t, nil)
	conn, err := client.New("passthrough:///"+in.Addr, grpckit.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	ctx := grpckittest.Context(t, 10*time.Second)
	if err := conn.WaitForReady(ctx); err != nil {
		t.Fatalf("WaitForReady = %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("second Close = %v, want the first result (nil)", err)
	}
	if err := conn.WaitForReady(ctx); !errors.Is(err, client.ErrConnClosed) {
		t.Fatalf("WaitForReady after Close = %v, want ErrConnClosed", err)
	}
}

func TestWaitForReadyHonoursContext(t *testing.T) {
	// Nothing listens on port 1 of loopback.
	conn, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := conn.WaitForReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForReady = %v, want DeadlineExceeded", err)
	}
}

func TestInterceptorOrder(t *testing.T) {
	want := []string{"tracing", "metrics", "logging", "timeout", "retry", "breaker", "ratelimit", "user"}
	var got []string
	for _, s := range client.DefaultOrder() {
		got = append(got, s.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("DefaultOrder = %v, want %v", got, want)
	}
	reversed := client.DefaultOrder()
	slices.Reverse(reversed)
	wantReversed := slices.Clone(want)
	slices.Reverse(wantReversed)

	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register)
	for _, tc := range []struct {
		name  string
		extra []client.Option
		want  []string
	}{
		{"default", nil, want},
		{"overridden", []client.Option{client.WithOrder(reversed...)}, wantReversed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			var deadlineAt []bool // did the slot see a deadline?
			note := func(name string, ctx context.Context) {
				mu.Lock()
				defer mu.Unlock()
				_, ok := ctx.Deadline()
				seen = append(seen, name)
				deadlineAt = append(deadlineAt, ok)
			}
			var opts []client.Option
			for _, s := range client.DefaultOrder() {
				name := s.String()
				opts = append(opts,
					client.WithUnaryInterceptor(s, func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, o ...grpc.CallOption) error {
						note(name, ctx)
						return inv(ctx, method, req, reply, cc, o...)
					}),
					client.WithStreamInterceptor(s, func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, st grpc.Streamer, o ...grpc.CallOption) (grpc.ClientStream, error) {
						note(name, ctx)
						return st(ctx, desc, cc, method, o...)
					}))
			}
			ec := echov1.NewEchoServiceClient(in.Dial(t, append(opts, tc.extra...)...))
			take := func() []string {
				mu.Lock()
				defer mu.Unlock()
				s := seen
				seen = nil
				return s
			}
			if _, err := ec.Echo(context.Background(), &echov1.EchoRequest{Message: "hi"}); err != nil {
				t.Fatal(err)
			}
			if got := take(); !slices.Equal(got, tc.want) {
				t.Fatalf("unary order = %v, want %v", got, tc.want)
			}
			if tc.name == "default" {
				// The built-in default deadline is set at the timeout slot:
				// the slots outside it see none, the ones inside see it.
				mu.Lock()
				wantDL := []bool{false, false, false, true, true, true, true, true}
				if !slices.Equal(deadlineAt, wantDL) {
					t.Errorf("deadline seen per slot = %v, want %v", deadlineAt, wantDL)
				}
				mu.Unlock()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := ec.BidiStream(ctx); err != nil {
				t.Fatal(err)
			}
			if got := take(); !slices.Equal(got, tc.want) {
				t.Fatalf("stream order = %v, want %v", got, tc.want)
			}
		})
	}
}
