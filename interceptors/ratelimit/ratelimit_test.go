package ratelimit_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/clock"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newLimiter(t *testing.T, opts ...ratelimit.Option) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// serve starts an echo backend on a bare grpc-go server limited by l, and
// returns it and a bare client of it.
func serve(t *testing.T, l *ratelimit.Limiter) (*grpckittest.Backend, echov1.EchoServiceClient) {
	t.Helper()
	b := &grpckittest.Backend{}
	addr := baregrpc.Serve(t, b.Register,
		grpc.ChainUnaryInterceptor(ratelimit.UnaryServerInterceptor(l)),
		grpc.ChainStreamInterceptor(ratelimit.StreamServerInterceptor(l)))
	return b, echov1.NewEchoServiceClient(baregrpc.Dial(t, addr))
}

// dialLimited starts an echo backend on a bare grpc-go server and returns
// it and a bare client of it limited by l (its unary calls, and its
// streams with streams set).
func dialLimited(t *testing.T, l *ratelimit.Limiter, streams bool) (*grpckittest.Backend, echov1.EchoServiceClient) {
	t.Helper()
	b := &grpckittest.Backend{}
	opts := []grpc.DialOption{grpc.WithChainUnaryInterceptor(ratelimit.UnaryClientInterceptor(l))}
	if streams {
		opts = append(opts, grpc.WithChainStreamInterceptor(ratelimit.StreamClientInterceptor(l)))
	}
	return b, echov1.NewEchoServiceClient(baregrpc.Dial(t, baregrpc.Serve(t, b.Register), opts...))
}

func call(ctx context.Context, c echov1.EchoServiceClient, msg string) codes.Code {
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: msg})
	return status.Code(err)
}

func TestBurst(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        rate.Limit
		burst, k int
	}{
		{"r10b5k3", 10, 5, 3},
		{"r1b1k4", 1, 1, 4},
		{"r1000b20k7", 1000, 20, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fake clock.Fake
			l := newLimiter(t, ratelimit.WithRate(tc.r, tc.burst), ratelimit.WithClock(fake.Now))
			in, c := serve(t, l)
			ctx := grpckittest.Context(t, 10*time.Second)
			var rejected int
			for range tc.burst + tc.k {
				switch code := call(ctx, c, "hi"); code {
				case codes.OK:
				case codes.ResourceExhausted:
					rejected++
				default:
					t.Fatalf("code: got %v, want OK or ResourceExhausted", code)
				}
			}
			if rejected != tc.k {
				t.Errorf("rejected: got %d, want %d", rejected, tc.k)
			}
			if r, c := l.Rejected(); r != int64(tc.k) || c != 0 {
				t.Errorf("Rejected: got %d over the rate, %d over concurrency, want %d, 0", r, c, tc.k)
			}
			if got, want := in.Faults.Calls(), int64(tc.burst); got != want {
				t.Errorf("server calls: got %d, want %d", got, want)
			}
			// One interval later exactly one more call fits.
			fake.Advance(time.Duration(float64(time.Second) / float64(tc.r)))
			if code := call(ctx, c, "hi"); code != codes.OK {
				t.Errorf("after one interval: got %v, want OK", code)
			}
			if code := call(ctx, c, "hi"); code != codes.ResourceExhausted {
				t.Errorf("second after one interval: got %v, want ResourceExhausted", code)
			}
		})
	}
}

func TestRejectionMessage(t *testing.T) {
	var fake clock.Fake
	_, c := serve(t, newLimiter(t, ratelimit.WithRate(1, 1), ratelimit.WithClock(fake.Now)))
	ctx := grpckittest.Context(t, 10*time.Second)
	_, _ = c.Echo(ctx, &echov1.EchoRequest{Message: "a"})
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "b"})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || st.Message() != ratelimit.Message {
		t.Fatalf("rejection: got %v %q, want ResourceExhausted %q", st.Code(), st.Message(), ratelimit.Message)
	}
}

func TestKeyedIsolation(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  ratelimit.KeyFunc
		ctx  func(ctx context.Context, key string) context.Context
		call func(ctx context.Context, c echov1.EchoServiceClient, key string) codes.Code
	}{
		{
			name: "metadata",
			key:  ratelimit.ByMetadata("tenant"),
			ctx: func(ctx context.Context, key string) context.Context {
				return metadata.AppendToOutgoingContext(ctx, "tenant", key)
			},
			call: func(ctx context.Context, c echov1.EchoServiceClient, _ string) codes.Code { return call(ctx, c, "hi") },
		},
		{
			name: "method",
			key:  ratelimit.ByMethod,
			ctx:  func(ctx context.Context, _ string) context.Context { return ctx },
			call: func(ctx context.Context, c echov1.EchoServiceClient, key string) codes.Code {
				if key == "noisy" {
					return call(ctx, c, "hi")
				}
				st, err := c.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "hi", Count: 1})
				if err != nil {
					return status.Code(err)
				}
				for {
					if _, err := st.Recv(); err != nil {
						return status.Code(ignoreEOF(err))
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fake clock.Fake
			l := newLimiter(t, ratelimit.WithRate(1, 3), ratelimit.WithKey(tc.key), ratelimit.WithClock(fake.Now))
			_, c := serve(t, l)
			ctx := grpckittest.Context(t, 10*time.Second)
			noisy := 0
			for range 20 {
				if tc.call(tc.ctx(ctx, "noisy"), c, "noisy") == codes.ResourceExhausted {
					noisy++
				}
			}
			if noisy != 17 {
				t.Errorf("noisy key rejected: got %d, want 17", noisy)
			}
			for i := range 3 {
				if code := tc.call(tc.ctx(ctx, "quiet"), c, "quiet"); code != codes.OK {
					t.Errorf("quiet key call %d: got %v, want OK", i, code)
				}
			}
		})
	}
}

func ignoreEOF(err error) error {
	if err.Error() == "EOF" {
		return nil
	}
	return err
}

func TestConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c, k   int
		stream bool
	}{
		{"unary c3k2", 3, 2, false},
		{"unary c1k5", 1, 5, false},
		{"stream c2k3", 2, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t, ratelimit.WithConcurrency(tc.c))
			in, c := serve(t, l)
			if !tc.stream {
				in.Faults.Next(tc.c, grpckittest.Fault{Hang: true}) // the slow calls
			}
			slow, cancel := context.WithCancel(grpckittest.Context(t, 20*time.Second))
			var wg sync.WaitGroup
			codesCh := make(chan codes.Code, tc.c)
			for range tc.c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if tc.stream {
						st, err := c.BidiStream(slow)
						if err == nil {
							_ = st.Send(&echov1.BidiStreamRequest{Message: "hold"})
							if _, err = st.Recv(); err == nil {
								_, err = st.Recv() // blocks until cancelled
							}
						}
						codesCh <- status.Code(err)
						return
					}
					codesCh <- call(slow, c, "hang")
				}()
			}
			wait.For(t, 10*time.Second, "condition", func() bool { return l.InFlight() == tc.c && in.Faults.Calls() == int64(tc.c) })
			ctx := grpckittest.Context(t, 10*time.Second)
			rejected := 0
			for range tc.k {
				var code codes.Code
				if tc.stream {
					st, err := c.BidiStream(ctx)
					if err == nil {
						_ = st.CloseSend()
						_, err = st.Recv()
					}
					code = status.Code(err)
				} else {
					code = call(ctx, c, "hi")
				}
				if code == codes.ResourceExhausted {
					rejected++
				}
			}
			if r, c := l.Rejected(); r != 0 || c != int64(tc.k) {
				t.Errorf("Rejected: got %d over the rate, %d over concurrency, want 0, %d", r, c, tc.k)
			}
			if rejected != tc.k {
				t.Errorf("rejected: got %d, want %d", rejected, tc.k)
			}
			cancel()
			wg.Wait()
			close(codesCh)
			for code := range codesCh {
				if code != codes.Canceled {
					t.Errorf("slow call: got %v, want Canceled", code)
				}
			}
			wait.For(t, 10*time.Second, "condition", func() bool { return l.InFlight() == 0 })
			if code := call(ctx, c, "hi"); code != codes.OK {
				t.Errorf("after release: got %v, want OK", code)
			}
		})
	}
}

func TestClient(t *testing.T) {
	t.Run("fail fast", func(t *testing.T) {
		var fake clock.Fake
		l := newLimiter(t, ratelimit.WithRate(1, 2), ratelimit.WithClock(fake.Now))
		in, c := dialLimited(t, l, true)
		ctx := grpckittest.Context(t, 10*time.Second)
		rejected := 0
		for range 5 {
			if call(ctx, c, "hi") == codes.ResourceExhausted {
				rejected++
			}
		}
		if _, err := c.BidiStream(ctx); status.Code(err) != codes.ResourceExhausted {
			t.Errorf("stream: got %v, want ResourceExhausted", status.Code(err))
		}
		if rejected != 3 {
			t.Errorf("rejected: got %d, want 3", rejected)
		}
		if got := in.Faults.Calls(); got != 2 {
			t.Errorf("server calls: got %d, want 2 (rejections send nothing)", got)
		}
	})
	t.Run("wait", func(t *testing.T) {
		// 50 calls/s, burst 1: the second call waits about 20 ms.
		l := newLimiter(t, ratelimit.WithRate(50, 1), ratelimit.WithWait())
		in, c := dialLimited(t, l, false)
		ctx := grpckittest.Context(t, 10*time.Second)
		for i := range 3 {
			if code := call(ctx, c, "hi"); code != codes.OK {
				t.Fatalf("call %d: got %v, want OK", i, code)
			}
		}
		// A call whose deadline is shorter than the wait fails at once.
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		_ = call(ctx, c, "hi")
		if code := call(short, c, "hi"); code != codes.ResourceExhausted {
			t.Errorf("deadline shorter than the wait: got %v, want ResourceExhausted", code)
		}
		if got := in.Faults.Calls(); got != 4 {
			t.Errorf("server calls: got %d, want 4", got)
		}
	})
}

func TestMaxKeys(t *testing.T) {
	var fake clock.Fake
	l := newLimiter(t, ratelimit.WithRate(1, 1), ratelimit.WithKey(ratelimit.ByMetadata("k")),
		ratelimit.WithMaxKeys(2), ratelimit.WithClock(fake.Now))
	ctx := context.Background()
	md := func(k string) context.Context { return metadata.NewIncomingContext(ctx, metadata.Pairs("k", k)) }
	for _, k := range []string{"a", "b"} {
		if !l.Allow(md(k), "/m") {
			t.Fatalf("first call of %q: got rejected, want allowed", k)
		}
	}
	// The set is full of active keys: a new key still gets its own bucket,
	// and its second call is limited.
	if !l.Allow(md("c"), "/m") {
		t.Errorf("c: got rejected, want allowed (a bucket of its own)")
	}
	if l.Allow(md("c"), "/m") {
		t.Errorf("c again: got allowed, want rejected (its bucket is empty)")
	}
	if got := l.Keys(); got != 2 {
		t.Errorf("keys: got %d, want 2", got)
	}
	// Refilled buckets make room without loss.
	fake.Advance(2 * time.Second)
	for _, k := range []string{"e", "f"} {
		if !l.Allow(md(k), "/m") {
			t.Errorf("%q after refill: got rejected, want allowed", k)
		}
	}
	if got := l.Keys(); got != 2 {
		t.Errorf("keys after eviction: got %d, want 2", got)
	}
}

// 10,200 throwaway keys in a burst (the set holds 10,000) do not lock out
// a real new caller: it gets a bucket and its burst of its own. Before, the
// keys past the bound shared one overflow bucket the flood had emptied.
func TestKeyFloodDoesNotLockOutNewKey(t *testing.T) {
	var fake clock.Fake
	l := newLimiter(t, ratelimit.WithRate(1, 2), ratelimit.WithKey(ratelimit.ByMetadata("tenant")),
		ratelimit.WithClock(fake.Now))
	md := func(k string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("tenant", k))
	}
	for i := range ratelimit.DefaultMaxKeys + 200 {
		k := md("throwaway-" + strconv.Itoa(i))
		_ = l.Allow(k, "/m")
		_ = l.Allow(k, "/m")
	}
	tenant := md("real-tenant")
	for i := range 2 {
		if !l.Allow(tenant, "/m") {
			t.Fatalf("new tenant's call %d after the flood: got rejected, want allowed (burst 2)", i)
		}
	}
	if l.Allow(tenant, "/m") {
		t.Errorf("new tenant's third call: got allowed, want rejected (its own limit holds)")
	}
	if got := l.Keys(); got != ratelimit.DefaultMaxKeys {
		t.Errorf("keys: got %d, want %d", got, ratelimit.DefaultMaxKeys)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// Keys are not kept: 400 calls with distinct 256 KiB tenant values leave
// only their hashes (before: +103 MiB after the buckets were idle).
func TestLongKeysAreNotKept(t *testing.T) {
	l := newLimiter(t, ratelimit.WithRate(1000, 10), ratelimit.WithKey(ratelimit.ByMetadata("tenant")))
	before := heapInUse()
	for i := range 400 {
		v := strings.Repeat("t", 256<<10) + strconv.Itoa(i)
		_ = l.Allow(metadata.NewIncomingContext(context.Background(), metadata.Pairs("tenant", v)), "/m")
	}
	after := heapInUse()
	if got := l.Keys(); got != 400 {
		t.Fatalf("keys: got %d, want 400", got)
	}
	if held := int64(after) - int64(before); held > 4<<20 {
		t.Errorf("heap held by 400 keys of 256 KiB: got %d KiB, want under 4 MiB", held>>10)
	}
	runtime.KeepAlive(l)
}

// A caller whose clock reading lags the one that last took a token (read,
// then descheduled while another call went through) is judged by a fresh
// reading: with a full bucket it is admitted. Reproduced with a clock
// whose first reading lets another call in 150 ms later and then returns
// the earlier time.
func TestLaggingClockReading(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now, reads := t0, 0
	var l *ratelimit.Limiter
	clk := func() time.Time {
		reads++
		if reads == 1 {
			now = t0.Add(150 * time.Millisecond)
			if !l.Allow(context.Background(), "/m") {
				t.Errorf("the call that overtook: got rejected, want allowed")
			}
			return t0
		}
		return now
	}
	l = newLimiter(t, ratelimit.WithRate(1000, 100), ratelimit.WithClock(clk))
	if !l.Allow(context.Background(), "/m") {
		t.Fatalf("call with a lagging clock reading and 98 tokens left: got rejected, want allowed")
	}
}

// Admission of an existing key allocates nothing.
func TestAdmitAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ratelimit.Option
	}{
		{"global", []ratelimit.Option{ratelimit.WithRate(rate.Inf, 1)}},
		{"rate", []ratelimit.Option{ratelimit.WithRate(1e12, 1)}},
		{"keyed by method", []ratelimit.Option{ratelimit.WithRate(1e12, 1), ratelimit.WithKey(ratelimit.ByMethod)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t, tc.opts...)
			ctx := context.Background()
			if got := testing.AllocsPerRun(1000, func() { _ = l.Allow(ctx, "/pkg.Svc/Method") }); got != 0 {
				t.Errorf("allocs per Allow: got %v, want 0", got)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ratelimit.Option
		want error
	}{
		{"nothing", nil, ratelimit.ErrNoLimit},
		{"zero rate", []ratelimit.Option{ratelimit.WithRate(0, 1)}, ratelimit.ErrInvalid},
		{"zero burst", []ratelimit.Option{ratelimit.WithRate(1, 0)}, ratelimit.ErrInvalid},
		{"zero concurrency", []ratelimit.Option{ratelimit.WithConcurrency(0)}, ratelimit.ErrInvalid},
		{"zero keys", []ratelimit.Option{ratelimit.WithRate(1, 1), ratelimit.WithMaxKeys(0)}, ratelimit.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ratelimit.New(tc.opts...); !errors.Is(err, tc.want) {
				t.Fatalf("New: got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ratelimit.New(ratelimit.WithRate(rate.Inf, 0)); err != nil {
		t.Errorf("rate.Inf: got %v, want nil", err)
	}
}

func TestByPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr net.Addr
		want string
	}{
		{"tcp drops the port", &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 4567}, "10.1.2.3"},
		{"unix", &net.UnixAddr{Name: "/run/s.sock", Net: "unix"}, "/run/s.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: tc.addr})
			if got := ratelimit.ByPeer(ctx, "/m"); got != tc.want {
				t.Errorf("ByPeer: got %q, want %q", got, tc.want)
			}
		})
	}
	if got := ratelimit.ByPeer(context.Background(), "/m"); got != "" {
		t.Errorf("ByPeer without a peer: got %q, want \"\"", got)
	}
}

func TestWaitCancelled(t *testing.T) {
	// 1 call/s, burst 1: the second call would wait a second.
	l := newLimiter(t, ratelimit.WithRate(1, 1), ratelimit.WithWait())
	in, c := dialLimited(t, l, false)
	ctx := grpckittest.Context(t, 10*time.Second)
	if code := call(ctx, c, "hi"); code != codes.OK {
		t.Fatalf("first call: got %v, want OK", code)
	}
	waiting, cancel := context.WithCancel(ctx)
	done := make(chan codes.Code, 1)
	go func() { done <- call(waiting, c, "hi") }()
	cancel()
	if code := <-done; code != codes.Canceled {
		t.Errorf("cancelled while waiting: got %v, want Canceled", code)
	}
	if got := in.Faults.Calls(); got != 1 {
		t.Errorf("server calls: got %d, want 1", got)
	}
}
