package shed_test

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/shed"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/clock"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// timed advances a fake clock by its service time on every call, and holds
// calls whose message is "hold" until release is closed.
type timed struct {
	echov1.UnimplementedEchoServiceServer
	fake    *clock.Fake
	service time.Duration
	held    chan struct{}
	release chan struct{}
}

func (s *timed) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if req.GetMessage() == "hold" {
		s.held <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	s.fake.Advance(s.service)
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

func (s *timed) BidiStream(stream echov1.EchoService_BidiStreamServer) error {
	_, err := stream.Recv()
	if err != nil {
		return nil
	}
	return stream.Send(&echov1.BidiStreamResponse{Message: "ok"})
}

// serve serves impl behind sh on a bare grpc-go server on 127.0.0.1:0
// until the test ends, and returns a bare client of it.
func serve(t testing.TB, sh *shed.Shedder, impl echov1.EchoServiceServer) echov1.EchoServiceClient {
	t.Helper()
	var opts []grpc.ServerOption
	if sh != nil {
		opts = append(opts,
			grpc.ChainUnaryInterceptor(shed.UnaryServerInterceptor(sh)),
			grpc.ChainStreamInterceptor(shed.StreamServerInterceptor(sh)))
	}
	addr := baregrpc.Serve(t, func(r grpc.ServiceRegistrar) { echov1.RegisterEchoServiceServer(r, impl) }, opts...)
	return echov1.NewEchoServiceClient(baregrpc.Dial(t, addr))
}

// warm runs calls of 10 ms (fake time) one after the other, 10 per 100 ms
// bucket, then completes the bucket: the shedder measures 10 calls per
// bucket at 10 ms, a limit of 10·10ms/100ms = 1 in flight.
func warm(t *testing.T, c echov1.EchoServiceClient, fake *clock.Fake) {
	t.Helper()
	ctx := grpckittest.Context(t, 10*time.Second)
	for i := range 20 {
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatalf("warm-up call %d: %v", i, err)
		}
	}
	fake.Advance(100 * time.Millisecond)
}

func newShedder(t *testing.T, fake *clock.Fake, opts ...shed.Option) *shed.Shedder {
	t.Helper()
	s, err := shed.New(append([]shed.Option{shed.WithClock(fake.Now), shed.WithWindow(time.Second, 10), shed.WithMinLimit(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestShed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cpu      float64 // < 0: no CPU signal
		wantShed bool
	}{
		{"in-flight signal", -1, true},
		{"cpu above threshold", 0.95, true},
		{"cpu below threshold", 0.1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &clock.Fake{}
			var opts []shed.Option
			if tc.cpu >= 0 {
				opts = append(opts, shed.WithCPU(func() float64 { return tc.cpu }, 0.8))
			}
			sh := newShedder(t, fake, opts...)
			impl := &timed{fake: fake, service: 10 * time.Millisecond, held: make(chan struct{}), release: make(chan struct{})}
			c := serve(t, sh, impl)
			if got := sh.Limit(); got != math.MaxInt {
				t.Fatalf("limit before any data: got %d, want none (MaxInt)", got)
			}
			warm(t, c, fake)
			if got := sh.Limit(); got != 1 {
				t.Fatalf("limit: got %d, want 1", got)
			}
			ctx := grpckittest.Context(t, 10*time.Second)
			held := make(chan error, 1)
			go func() {
				_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hold"})
				held <- err
			}()
			<-impl.held
			_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			_, serr := bidi(ctx, c)
			want := codes.OK
			if tc.wantShed {
				want = codes.ResourceExhausted
			}
			if got := status.Code(err); got != want {
				t.Errorf("unary call above the limit: got %v, want %v", got, want)
			}
			if got := status.Code(serr); got != want {
				t.Errorf("stream above the limit: got %v, want %v", got, want)
			}
			if tc.wantShed && status.Convert(err).Message() != shed.Message {
				t.Errorf("message: got %q, want %q", status.Convert(err).Message(), shed.Message)
			}
			close(impl.release)
			if err := <-held; err != nil {
				t.Fatalf("held call: %v", err)
			}
			if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
				t.Errorf("call below the limit: got %v, want success", err)
			}
		})
	}
}

func bidi(ctx context.Context, c echov1.EchoServiceClient) (*echov1.BidiStreamResponse, error) {
	st, err := c.BidiStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&echov1.BidiStreamRequest{Message: "hi"}); err != nil {
		_, err = st.Recv()
		return nil, err
	}
	return st.Recv()
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  shed.Option
	}{
		{"one bucket", shed.WithWindow(time.Second, 1)},
		{"tiny buckets", shed.WithWindow(time.Millisecond, 10)},
		{"zero min limit", shed.WithMinLimit(0)},
		{"nil cpu", shed.WithCPU(nil, 0.8)},
		{"threshold above 1", shed.WithCPU(func() float64 { return 0 }, 1.5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := shed.New(tc.opt); !errors.Is(err, shed.ErrInvalid) {
				t.Fatalf("New: got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCPUSampler(t *testing.T) {
	s, err := shed.NewCPUSampler(5 * time.Millisecond)
	if err != nil {
		t.Skipf("no CPU source here: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Usage() == 0 && time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ { // burn a little CPU so that usage shows
			_ = math.Sqrt(float64(i))
		}
	}
	if u := s.Usage(); !(u > 0 && u <= 1) {
		t.Errorf("usage: got %v, want in (0, 1]", u)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCPUCooldown(t *testing.T) {
	fake := &clock.Fake{}
	var cpu atomic.Value
	cpu.Store(0.95)
	// Buckets of 1 s, so that the measurement stays in the window for the
	// whole test: only the cooldown changes the outcome.
	sh := newShedder(t, fake, shed.WithCPU(func() float64 { return cpu.Load().(float64) }, 0.8), shed.WithWindow(10*time.Second, 10))
	impl := &timed{fake: fake, service: 10 * time.Millisecond, held: make(chan struct{}), release: make(chan struct{})}
	c := serve(t, sh, impl)
	warm(t, c, fake)
	fake.Advance(time.Second)
	if got := sh.Limit(); got != 1 {
		t.Fatalf("limit: got %d, want 1", got)
	}
	ctx := grpckittest.Context(t, 10*time.Second)
	held := make(chan error, 1)
	go func() {
		_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hold"})
		held <- err
	}()
	<-impl.held
	for _, step := range []struct {
		name    string
		cpu     float64
		advance time.Duration
		want    codes.Code
	}{
		{"cpu high", 0.95, 0, codes.ResourceExhausted},
		{"cpu low within a second of a rejection", 0.1, 500 * time.Millisecond, codes.ResourceExhausted},
		{"cpu low, cooled down", 0.1, 1100 * time.Millisecond, codes.OK},
	} {
		cpu.Store(step.cpu)
		fake.Advance(step.advance)
		_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		if got := status.Code(err); got != step.want {
			t.Errorf("%s: got %v, want %v", step.name, got, step.want)
		}
	}
	close(impl.release)
	if err := <-held; err != nil {
		t.Fatalf("held call: %v", err)
	}
}
