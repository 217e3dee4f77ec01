package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/interceptors/retry"
	"github.com/grpckit/grpckit/internal/benchkit"
	"github.com/grpckit/grpckit/internal/clock"
	"github.com/grpckit/grpckit/internal/echo"
	"github.com/grpckit/grpckit/internal/testsrv"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

const echoMethod = "/grpckit.echo.v1.EchoService/Echo"

var fastRetry = retry.Policy{InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

func echoErr(ctx context.Context, c echov1.EchoServiceClient, msg string) error {
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: msg})
	return err
}

func TestWithIdempotent(t *testing.T) {
	srv := &echo.FailFirst{N: 2}
	c := testsrv.Echo(testsrv.Dial(t, testsrv.Serve(t, srv), client.WithIdempotent(echoMethod)))
	if err := echoErr(testsrv.Ctx(t, 10*time.Second), c, "hi"); err != nil {
		t.Fatalf("call failing twice then succeeding: got %v, want success", err)
	}
	if got := srv.Calls(); got != 3 {
		t.Errorf("server calls: got %d, want 3", got)
	}
}

func TestWithRetry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		methods   []string
		wantCode  codes.Code
		wantCalls int64
	}{
		{"idempotent", []string{echoMethod}, codes.OK, 3},
		{"whole service", []string{"/grpckit.echo.v1.EchoService/*"}, codes.OK, 3},
		{"not idempotent", []string{"/grpckit.echo.v1.EchoService/ServerStream"}, codes.Unavailable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &echo.FailFirst{N: 2}
			c := testsrv.Echo(testsrv.Dial(t, testsrv.Serve(t, srv), client.WithRetry(fastRetry, tc.methods...)))
			if got := status.Code(echoErr(testsrv.Ctx(t, 10*time.Second), c, "hi")); got != tc.wantCode {
				t.Errorf("code: got %v, want %v", got, tc.wantCode)
			}
			if got := srv.Calls(); got != tc.wantCalls {
				t.Errorf("server calls: got %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestWithRetryBudget(t *testing.T) {
	const calls = 100
	srv := &echo.FailFirst{N: 1 << 40}
	reg := prometheus.NewRegistry()
	c := testsrv.Echo(testsrv.Dial(t, testsrv.Serve(t, srv), grpckit.WithMetrics(reg),
		client.WithRetry(fastRetry, echoMethod), client.WithRetryBudget(0.2, 0), client.WithoutBreaker()))
	ctx := testsrv.Ctx(t, 30*time.Second)
	for range calls {
		_ = echoErr(ctx, c, "hi")
	}
	if got, want := srv.Calls(), int64(calls*1.2); got != want {
		t.Errorf("server calls: got %d, want %d (20%% retries)", got, want)
	}
	if got := counter(t, reg, "grpckit_retry_retries_total"); got != 20 {
		t.Errorf("grpckit_retry_retries_total: got %v, want 20", got)
	}
}

func TestDefaultBreaker(t *testing.T) {
	in := testsrv.Start(t)
	c := testsrv.Echo(testsrv.Dial(t, in.Addr))
	ctx := testsrv.Ctx(t, 10*time.Second)
	for range breaker.DefaultThreshold {
		if err := echoErr(ctx, c, "code Unavailable"); errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("before the threshold: got the breaker's rejection, want the server's error")
		}
	}
	err := echoErr(ctx, c, "hi")
	if status.Code(err) != codes.Unavailable || !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("after %d failures: got %v, want the breaker's Unavailable", breaker.DefaultThreshold, err)
	}
	if got := in.Echo.Calls(); got != breaker.DefaultThreshold {
		t.Errorf("server calls: got %d, want %d", got, breaker.DefaultThreshold)
	}
}

// The default breaker judges the backend: calls whose deadline had passed
// before they were sent, and handlers returning plain errors, leave it
// closed for every caller.
func TestDefaultBreakerIgnoresCallersAndAppErrors(t *testing.T) {
	in := testsrv.Start(t)
	c := testsrv.Echo(testsrv.Dial(t, in.Addr))
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	ctx := testsrv.Ctx(t, 10*time.Second)
	for i := range 2 * breaker.DefaultThreshold {
		if got := status.Code(echoErr(expired, c, "hi")); got != codes.DeadlineExceeded {
			t.Fatalf("expired call %d: got %v, want DeadlineExceeded", i, got)
		}
		if got := status.Code(echoErr(ctx, c, "code Unknown")); got != codes.Unknown {
			t.Fatalf("plain error %d: got %v, want Unknown", i, got)
		}
	}
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("next call: got %v, want success (breaker closed)", err)
	}
}

func TestWithBreaker(t *testing.T) {
	var fake clock.Fake
	reg := prometheus.NewRegistry()
	in := testsrv.Start(t)
	c := testsrv.Echo(testsrv.Dial(t, in.Addr, grpckit.WithMetrics(reg),
		client.WithBreaker(breaker.WithThreshold(2), breaker.WithTimeout(time.Second), breaker.WithClock(fake.Now))))
	ctx := testsrv.Ctx(t, 10*time.Second)
	_ = echoErr(ctx, c, "code Unavailable")
	_ = echoErr(ctx, c, "code Unavailable")
	for range 3 {
		if err := echoErr(ctx, c, "hi"); !errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("open breaker: got %v, want ErrRejected", err)
		}
	}
	if got := in.Echo.Calls(); got != 2 {
		t.Fatalf("server calls while open: got %d, want 2", got)
	}
	if got := counter(t, reg, "grpckit_breaker_rejected_total"); got != 3 {
		t.Errorf("grpckit_breaker_rejected_total: got %v, want 3", got)
	}
	fake.Advance(time.Second)
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("probe: got %v, want success", err)
	}
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("closed again: got %v, want success", err)
	}
	if got := in.Echo.Calls(); got != 4 {
		t.Errorf("server calls: got %d, want 4", got)
	}
	if got := counter(t, reg, "grpckit_breaker_transitions_total"); got != 3 {
		t.Errorf("grpckit_breaker_transitions_total: got %v, want 3 (open, half-open, closed)", got)
	}
}

func TestWithoutBreaker(t *testing.T) {
	in := testsrv.Start(t)
	c := testsrv.Echo(testsrv.Dial(t, in.Addr, client.WithoutBreaker()))
	ctx := testsrv.Ctx(t, 10*time.Second)
	for range 20 {
		if err := echoErr(ctx, c, "code Unavailable"); errors.Is(err, breaker.ErrRejected) {
			t.Fatal("got a breaker rejection with the breaker off")
		}
	}
	if got := in.Echo.Calls(); got != 20 {
		t.Errorf("server calls: got %d, want 20", got)
	}
}

func TestWithAdaptiveThrottle(t *testing.T) {
	var fake clock.Fake
	in := testsrv.Start(t)
	c := testsrv.Echo(testsrv.Dial(t, in.Addr, client.WithAdaptiveThrottle(
		breaker.WithClock(fake.Now), breaker.WithRand(func() float64 { return 0.5 }))))
	ctx := testsrv.Ctx(t, 10*time.Second)
	rejected := 0
	for range 100 {
		if errors.Is(echoErr(ctx, c, "code Unavailable"), breaker.ErrRejected) {
			rejected++
		}
	}
	// With no accepts, a call is rejected once (requests)/(requests+1) > 0.5:
	// from the third call on.
	if rejected != 98 {
		t.Errorf("rejected: got %d, want 98", rejected)
	}
	if got := in.Echo.Calls(); got != 2 {
		t.Errorf("server calls: got %d, want 2", got)
	}
}

func TestWithRateLimit(t *testing.T) {
	var fake clock.Fake
	in := testsrv.Start(t)
	c := testsrv.Echo(testsrv.Dial(t, in.Addr, client.WithRateLimit(5, 2, ratelimit.WithClock(fake.Now))))
	ctx := testsrv.Ctx(t, 10*time.Second)
	rejected := 0
	for range 2 + 4 {
		if status.Code(echoErr(ctx, c, "hi")) == codes.ResourceExhausted {
			rejected++
		}
	}
	if rejected != 4 {
		t.Errorf("rejected: got %d, want 4", rejected)
	}
	if got := in.Echo.Calls(); got != 2 {
		t.Errorf("server calls: got %d, want 2", got)
	}
}

func TestRetryStopsAtOpenBreaker(t *testing.T) {
	srv := &echo.FailFirst{N: 1 << 40}
	c := testsrv.Echo(testsrv.Dial(t, testsrv.Serve(t, srv),
		client.WithRetry(fastRetry, echoMethod), client.WithBreaker(breaker.WithThreshold(1))))
	err := echoErr(testsrv.Ctx(t, 10*time.Second), c, "hi")
	if !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("got %v, want the breaker's rejection (attempt 2 refused)", err)
	}
	if got := srv.Calls(); got != 1 {
		t.Errorf("server calls: got %d, want 1", got)
	}
}

func TestResilienceOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  client.Option
	}{
		{"retry bad method", client.WithIdempotent("Echo")},
		{"retry budget ratio", client.WithRetryBudget(1.5, 0)},
		{"breaker threshold", client.WithBreaker(breaker.WithThreshold(0))},
		{"throttle K", client.WithAdaptiveThrottle(breaker.WithK(0.5))},
		{"rate limit", client.WithRateLimit(-1, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := client.New("passthrough:///127.0.0.1:1", client.WithInsecure(), tc.opt); err == nil {
				t.Fatal("New: got nil error, want one")
			}
		})
	}
}

// counter sums the series of counter family name in reg.
func counter(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// BenchmarkResilience compares a unary call through the client's rate
// limiter, breaker and retry (and then the server's limits and shedding
// too) with bare grpc-go and with the builder with everything off, on real
// TCP loopback, interleaved in rounds (see internal/benchkit). b.N is not
// used.
//
//	go test -run '^$' -bench Resilience -benchtime 1x ./client/
func BenchmarkResilience(b *testing.B) {
	offS := []server.Option{grpckit.WithAccessLog(false), grpckit.WithMetrics(nil)}
	offC := []client.Option{grpckit.WithAccessLog(false), grpckit.WithMetrics(nil), client.WithDefaultTimeout(0), client.WithoutBreaker()}
	clientRes := append(slices.Clone(offC),
		client.WithRateLimit(1e9, 1<<20), client.WithBreaker(), client.WithIdempotent(echoMethod))
	serverRes := append(slices.Clone(offS),
		server.WithRateLimit(1e9, 1<<20), server.WithConcurrencyLimit(1<<20), server.WithLoadShedding())
	cfgs := []benchkit.Config{
		{Name: "bare grpc-go", Bare: true},
		{Name: "builder, all off", Server: offS, Client: offC},
		{Name: "client limiter+breaker+retry", Server: offS, Client: clientRes},
		{Name: "+ server rate+conc+shed", Server: serverRes, Client: clientRes},
	}
	for _, inflight := range []int{1, 8} {
		benchkit.Report(b, fmt.Sprintf("unary-%d", inflight), benchkit.Run(b, cfgs, 7, 3000, inflight, false))
	}
}
