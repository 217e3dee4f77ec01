package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/retry"
	"github.com/grpckit/grpckit/internal/benchkit"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	gkresolver "github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

const echoMethod = "/grpckit.echo.v1.EchoService/Echo"

var fastRetry = retry.Policy{InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

func echoErr(ctx context.Context, c echov1.EchoServiceClient, msg string) error {
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: msg})
	return err
}

func TestWithIdempotent(t *testing.T) {
	b := &grpckittest.Backend{}
	b.Faults.Next(2, grpckittest.Fault{Code: codes.Unavailable})
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, client.WithIdempotent(echoMethod)))
	if err := echoErr(grpckittest.Context(t, 10*time.Second), c, "hi"); err != nil {
		t.Fatalf("call failing twice then succeeding: got %v, want success", err)
	}
	if got := b.Faults.Calls(); got != 3 {
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
			b := &grpckittest.Backend{}
			b.Faults.Next(2, grpckittest.Fault{Code: codes.Unavailable})
			c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, client.WithRetry(fastRetry, tc.methods...)))
			if got := status.Code(echoErr(grpckittest.Context(t, 10*time.Second), c, "hi")); got != tc.wantCode {
				t.Errorf("code: got %v, want %v", got, tc.wantCode)
			}
			if got := b.Faults.Calls(); got != tc.wantCalls {
				t.Errorf("server calls: got %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestWithRetryBudget(t *testing.T) {
	const calls = 100
	b := &grpckittest.Backend{}
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	reg := prometheus.NewRegistry()
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, grpckit.WithMetrics(reg),
		client.WithRetry(fastRetry, echoMethod), client.WithRetryBudget(0.2, 0), client.WithoutBreaker()))
	ctx := grpckittest.Context(t, 30*time.Second)
	for range calls {
		_ = echoErr(ctx, c, "hi")
	}
	if got, want := b.Faults.Calls(), int64(calls*1.2); got != want {
		t.Errorf("server calls: got %d, want %d (20%% retries)", got, want)
	}
	if got := counter(t, reg, "grpckit_retry_retries_total"); got != 20 {
		t.Errorf("grpckit_retry_retries_total: got %v, want 20", got)
	}
}

func TestDefaultBreaker(t *testing.T) {
	b := &grpckittest.Backend{}
	b.Faults.Next(breaker.DefaultThreshold, grpckittest.Fault{Code: codes.Unavailable})
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t))
	ctx := grpckittest.Context(t, 10*time.Second)
	for range breaker.DefaultThreshold {
		if err := echoErr(ctx, c, "fail"); errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("before the threshold: got the breaker's rejection, want the server's error")
		}
	}
	err := echoErr(ctx, c, "hi")
	if status.Code(err) != codes.Unavailable || !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("after %d failures: got %v, want the breaker's Unavailable", breaker.DefaultThreshold, err)
	}
	if got := b.Faults.Calls(); got != breaker.DefaultThreshold {
		t.Errorf("server calls: got %d, want %d", got, breaker.DefaultThreshold)
	}
}

// The default breaker judges the backend: calls whose deadline had passed
// before they were sent, and handlers returning plain errors, leave it
// closed for every caller.
func TestDefaultBreakerIgnoresCallersAndAppErrors(t *testing.T) {
	b := &grpckittest.Backend{}
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t))
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancel()
	ctx := grpckittest.Context(t, 10*time.Second)
	b.Faults.Always(grpckittest.Fault{Code: codes.Unknown}) // as a handler returning a plain error
	for i := range 2 * breaker.DefaultThreshold {
		if got := status.Code(echoErr(expired, c, "hi")); got != codes.DeadlineExceeded {
			t.Fatalf("expired call %d: got %v, want DeadlineExceeded", i, got)
		}
		if got := status.Code(echoErr(ctx, c, "plain error")); got != codes.Unknown {
			t.Fatalf("plain error %d: got %v, want Unknown", i, got)
		}
	}
	b.Faults.Reset()
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("next call: got %v, want success (breaker closed)", err)
	}
}

// The builder passes the breaker's options and metrics through (the state
// machine's timing is tested in package breaker).
func TestWithBreaker(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := &grpckittest.Backend{}
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, grpckit.WithMetrics(reg),
		client.WithBreaker(breaker.WithThreshold(2), breaker.WithTimeout(time.Hour))))
	ctx := grpckittest.Context(t, 10*time.Second)
	b.Faults.Next(2, grpckittest.Fault{Code: codes.Unavailable})
	_ = echoErr(ctx, c, "fail")
	_ = echoErr(ctx, c, "fail")
	for range 3 {
		if err := echoErr(ctx, c, "hi"); !errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("open breaker: got %v, want ErrRejected", err)
		}
	}
	if got := b.Faults.Calls(); got != 2 {
		t.Fatalf("server calls while open: got %d, want 2", got)
	}
	if got := counter(t, reg, "grpckit_breaker_rejected_total"); got != 3 {
		t.Errorf("grpckit_breaker_rejected_total: got %v, want 3", got)
	}
	if got := counter(t, reg, "grpckit_breaker_transitions_total"); got != 1 {
		t.Errorf("grpckit_breaker_transitions_total: got %v, want 1 (closed to open)", got)
	}
}

func TestWithoutBreaker(t *testing.T) {
	b := &grpckittest.Backend{}
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, client.WithoutBreaker()))
	ctx := grpckittest.Context(t, 10*time.Second)
	for range 20 {
		if err := echoErr(ctx, c, "fail"); errors.Is(err, breaker.ErrRejected) {
			t.Fatal("got a breaker rejection with the breaker off")
		}
	}
	if got := b.Faults.Calls(); got != 20 {
		t.Errorf("server calls: got %d, want 20", got)
	}
}

func TestWithAdaptiveThrottle(t *testing.T) {
	b := &grpckittest.Backend{}
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, client.WithAdaptiveThrottle()))
	ctx := grpckittest.Context(t, 10*time.Second)
	rejected := 0
	for range 100 {
		if errors.Is(echoErr(ctx, c, "fail"), breaker.ErrRejected) {
			rejected++
		}
	}
	// With no accepts, the n-th call is rejected with probability
	// n/(n+1): about 5 of 100 reach the server (the chance that 30 do is
	// below 1e-20).
	if sent := b.Faults.Calls(); sent+int64(rejected) != 100 || sent >= 30 || sent < 1 {
		t.Errorf("server calls: got %d (rejected %d), want between 1 and 29, and the rest rejected", sent, rejected)
	}
}

func TestWithRateLimit(t *testing.T) {
	b := &grpckittest.Backend{}
	// One token per 1,000 s: none comes back while the test runs.
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, client.WithRateLimit(0.001, 2)))
	ctx := grpckittest.Context(t, 10*time.Second)
	rejected := 0
	for range 2 + 4 {
		if status.Code(echoErr(ctx, c, "hi")) == codes.ResourceExhausted {
			rejected++
		}
	}
	if rejected != 4 {
		t.Errorf("rejected: got %d, want 4", rejected)
	}
	if got := b.Faults.Calls(); got != 2 {
		t.Errorf("server calls: got %d, want 2", got)
	}
}

func TestRetryStopsAtOpenBreaker(t *testing.T) {
	b := &grpckittest.Backend{}
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t,
		client.WithRetry(fastRetry, echoMethod), client.WithBreaker(breaker.WithThreshold(1))))
	err := echoErr(grpckittest.Context(t, 10*time.Second), c, "hi")
	if !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("got %v, want the breaker's rejection (attempt 2 refused)", err)
	}
	if got := b.Faults.Calls(); got != 1 {
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
			if _, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure(), tc.opt); err == nil {
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

// With the default balancer behind a resolver, calls that fail for want of
// an endpoint leave the breaker closed, so calls succeed as soon as an
// endpoint appears; failures from a backend still open it.
func TestBreakerIgnoresCallsWithoutEndpoints(t *testing.T) {
	b := &grpckittest.Backend{}
	srv := grpckittest.NewServer(t, b.Register, grpckit.WithAccessLog(false))
	src := &grpckittest.Source{}
	rb, err := gkresolver.NewBuilder("nowhere", src)
	if err != nil {
		t.Fatal(err)
	}
	c := echov1.NewEchoServiceClient(grpckittest.Dial(t, "nowhere:///echo", grpckit.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(rb)),
		client.WithBreaker(breaker.WithThreshold(2), breaker.WithTimeout(time.Hour))))
	src.Replace() // the service has no instances
	for i := range 5 {
		if err := echoErr(grpckittest.Context(t, 5*time.Second), c, "hi"); status.Code(err) != codes.Unavailable || errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("call %d with no endpoints: got %v, want Unavailable from the resolver, not the breaker", i, err)
		}
	}
	src.Replace(gkresolver.Endpoint{Addr: srv.Addr})
	wait.For(t, 10*time.Second, "a call to succeed once an endpoint exists", func() bool {
		err := echoErr(grpckittest.Context(t, 5*time.Second), c, "hi")
		if errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("call once an endpoint exists: got the breaker's rejection")
		}
		return err == nil
	})
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	for range 2 {
		_ = echoErr(grpckittest.Context(t, 5*time.Second), c, "fail")
	}
	if err := echoErr(grpckittest.Context(t, 5*time.Second), c, "hi"); !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("after 2 failures from a ready backend: got %v, want the breaker's rejection", err)
	}
}
