package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/retry"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/clock"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const echoMethod = "/grpckit.echo.v1.EchoService/Echo"

func fast(codes ...codes.Code) retry.Policy {
	return retry.Policy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, Codes: codes}
}

func newRetrier(t *testing.T, opts ...retry.Option) *retry.Retrier {
	t.Helper()
	r, err := retry.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// dial serves b on a bare grpc-go server and returns a bare client of it
// whose calls go through r's interceptor, then through inner.
func dial(t *testing.T, b *grpckittest.Backend, r *retry.Retrier, inner ...grpc.UnaryClientInterceptor) echov1.EchoServiceClient {
	t.Helper()
	chain := append([]grpc.UnaryClientInterceptor{retry.UnaryClientInterceptor(r)}, inner...)
	return echov1.NewEchoServiceClient(baregrpc.Dial(t, baregrpc.Serve(t, b.Register), grpc.WithChainUnaryInterceptor(chain...)))
}

// failing returns a backend whose first n calls fail with code.
func failing(n int, code codes.Code) *grpckittest.Backend {
	b := &grpckittest.Backend{}
	b.Faults.Next(n, grpckittest.Fault{Code: code})
	return b
}

// failingAlways returns a backend whose calls all fail with Unavailable.
func failingAlways() *grpckittest.Backend {
	b := &grpckittest.Backend{}
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	return b
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []retry.Option
		fail      int
		code      codes.Code
		wantCode  codes.Code
		wantCalls int64
	}{
		{"idempotent fails twice", []retry.Option{retry.WithMethods(fast(), echoMethod)}, 2, codes.Unavailable, codes.OK, 3},
		{"service wildcard", []retry.Option{retry.WithMethods(fast(), "/grpckit.echo.v1.EchoService/*")}, 2, codes.Unavailable, codes.OK, 3},
		{"not idempotent", []retry.Option{retry.WithMethods(fast(), "/grpckit.echo.v1.EchoService/Other")}, 2, codes.Unavailable, codes.Unavailable, 1},
		{"no methods", nil, 2, codes.Unavailable, codes.Unavailable, 1},
		{"attempts exhausted", []retry.Option{retry.WithMethods(fast(), echoMethod)}, 5, codes.Unavailable, codes.Unavailable, 3},
		{"code not retriable", []retry.Option{retry.WithMethods(fast(), echoMethod)}, 2, codes.Internal, codes.Internal, 1},
		{"ResourceExhausted not retried by default", []retry.Option{retry.WithMethods(fast(), echoMethod)}, 2, codes.ResourceExhausted, codes.ResourceExhausted, 1},
		{"custom codes", []retry.Option{retry.WithMethods(fast(codes.Aborted), echoMethod)}, 2, codes.Aborted, codes.OK, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := failing(tc.fail, tc.code)
			c := dial(t, srv, newRetrier(t, tc.opts...))
			resp, err := c.Echo(grpckittest.Context(t, 10*time.Second), &echov1.EchoRequest{Message: "hi"})
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code: got %v, want %v", got, tc.wantCode)
			}
			if err == nil && resp.GetMessage() != "hi" {
				t.Errorf("reply: got %q, want %q", resp.GetMessage(), "hi")
			}
			if got := srv.Faults.Calls(); got != tc.wantCalls {
				t.Errorf("server calls: got %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ratio float64
		calls int
	}{
		{"10%", 0.1, 200},
		{"25%", 0.25, 100},
		{"none", 0, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := failingAlways()
			r := newRetrier(t, retry.WithMethods(fast(), echoMethod), retry.WithBudget(tc.ratio, 0))
			c := dial(t, srv, r)
			ctx := grpckittest.Context(t, 30*time.Second)
			for range tc.calls {
				_, _ = c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			}
			extra := srv.Faults.Calls() - int64(tc.calls)
			if want := int64(float64(tc.calls) * tc.ratio); extra != want {
				t.Errorf("retries: got %d, want %d (%v of %d calls, attempts would allow %d)", extra, want, tc.ratio, tc.calls, 2*tc.calls)
			}
			// Each call wanted 2 retries (3 attempts) and none got both:
			// every call ended on a retry the budget refused.
			b := r.Budget()
			if b.Retries != extra || b.Exhausted != int64(tc.calls) || b.Available >= 1 {
				t.Errorf("Budget: got %+v, want %d retries, %d exhausted, under 1 available", b, extra, tc.calls)
			}
		})
	}
	t.Run("floor", func(t *testing.T) {
		var fake clock.Fake
		srv := failingAlways()
		c := dial(t, srv, newRetrier(t, retry.WithMethods(fast(), echoMethod),
			retry.WithBudget(0, 5), retry.WithClock(fake.Now)))
		ctx := grpckittest.Context(t, 30*time.Second)
		for range 10 {
			_, _ = c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		}
		if got := srv.Faults.Calls(); got != 15 {
			t.Errorf("server calls with a floor of 5/s: got %d, want 15", got)
		}
		fake.Advance(time.Second)
		_, _ = c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		if got := srv.Faults.Calls(); got != 18 {
			t.Errorf("server calls one second later: got %d, want 18", got)
		}
	})
}

func TestBreakerRejectionNotRetried(t *testing.T) {
	srv := failingAlways()
	b, err := breaker.New("test", breaker.WithThreshold(1))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv, newRetrier(t, retry.WithMethods(fast(), echoMethod)),
		breaker.UnaryClientInterceptor(b))
	ctx := grpckittest.Context(t, 10*time.Second)
	// Attempt 1 fails and opens the breaker; attempt 2 is rejected and ends
	// the retries.
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("first call: got %v, want the breaker's rejection", err)
	}
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("second call: got %v, want the breaker's rejection", err)
	}
	if got := srv.Faults.Calls(); got != 1 {
		t.Errorf("server calls: got %d, want 1", got)
	}
}

func TestDeadline(t *testing.T) {
	srv := failingAlways()
	slow := retry.Policy{MaxAttempts: 5, InitialBackoff: time.Minute}
	c := dial(t, srv, newRetrier(t, retry.WithMethods(slow, echoMethod)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("code: got %v, want Unavailable (the last attempt's)", status.Code(err))
	}
	if time.Since(start) >= 5*time.Second {
		t.Errorf("returned after %v, want at once: the backoff cannot fit the deadline", time.Since(start))
	}
	if got := srv.Faults.Calls(); got != 1 {
		t.Errorf("server calls: got %d, want 1", got)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  retry.Option
	}{
		{"bad method", retry.WithMethods(retry.Policy{}, "Echo")},
		{"trailing slash", retry.WithMethods(retry.Policy{}, "/svc/")},
		{"negative attempts", retry.WithMethods(retry.Policy{MaxAttempts: -1}, echoMethod)},
		{"OK retriable", retry.WithMethods(retry.Policy{Codes: []codes.Code{codes.OK}}, echoMethod)},
		{"ratio above 1", retry.WithBudget(2, 0)},
		{"negative floor", retry.WithBudget(0.1, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := retry.New(tc.opt); !errors.Is(err, retry.ErrInvalid) {
				t.Fatalf("New: got %v, want ErrInvalid", err)
			}
		})
	}
}
