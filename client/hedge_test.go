package client_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/hedge"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestWithHedging(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []client.Option
		wantCalls int64
		wantSent  float64
	}{
		{"default off", nil, 1, 0},
		{"on", []client.Option{client.WithHedging(hedge.WithMethods(echoMethod), hedge.WithDelay(5*time.Millisecond))}, 2, 1},
		{"other method", []client.Option{client.WithHedging(hedge.WithMethods("/grpckit.echo.v1.EchoService/Other"), hedge.WithDelay(5*time.Millisecond))}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &grpckittest.Backend{}
			b.Faults.Next(1, grpckittest.Fault{Delay: 200 * time.Millisecond})
			reg := prometheus.NewRegistry()
			c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, append(tc.opts, grpckit.WithMetrics(reg))...))
			if err := echoErr(grpckittest.Context(t, 10*time.Second), c, "hi"); err != nil {
				t.Fatalf("Echo: %v", err)
			}
			if got := b.Faults.Calls(); got != tc.wantCalls {
				t.Errorf("server calls: got %d, want %d", got, tc.wantCalls)
			}
			if got := counter(t, reg, "grpckit_hedge_sent_total"); got != tc.wantSent {
				t.Errorf("grpckit_hedge_sent_total: got %v, want %v", got, tc.wantSent)
			}
		})
	}
}

func TestWithHedgingInvalid(t *testing.T) {
	_, err := client.New("passthrough:///x", grpckit.WithInsecure(), client.WithHedging(hedge.WithMaxAttempts(0)))
	if err == nil {
		t.Fatal("New: got nil, want an error")
	}
}

// TestHedgingInsideRetryOutsideBreaker proves the assembly: a retry is a
// hedged call (the hedge answers the retry's hanging attempt), and the
// breaker judges each hedged attempt (a half-open breaker lets the probe
// through and rejects its hedge).
func TestHedgingInsideRetryOutsideBreaker(t *testing.T) {
	b := &grpckittest.Backend{}
	reg := prometheus.NewRegistry()
	c := echov1.NewEchoServiceClient(grpckittest.NewServer(t, b.Register).Dial(t, grpckit.WithMetrics(reg),
		client.WithRetry(fastRetry, echoMethod),
		client.WithHedging(hedge.WithMethods(echoMethod), hedge.WithDelay(5*time.Millisecond)),
		client.WithBreaker(breaker.WithThreshold(2), breaker.WithTimeout(100*time.Millisecond))))
	ctx := grpckittest.Context(t, 20*time.Second)

	b.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
	b.Faults.Next(1, grpckittest.Fault{Delay: 10 * time.Second})
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("retried and hedged: got %v, want success", err)
	}
	if got := b.Faults.Calls(); got != 3 {
		t.Errorf("server calls: got %d, want 3 (failed, retried and hanging, hedged)", got)
	}
	if got := counter(t, reg, "grpckit_hedge_won_total"); got != 1 {
		t.Errorf("grpckit_hedge_won_total: got %v, want 1", got)
	}

	// Open the breaker: two calls, each failing on its attempts.
	b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	for range 2 {
		_ = echoErr(ctx, c, "fail")
	}
	before := b.Faults.Calls()
	if err := echoErr(ctx, c, "hi"); status.Code(err) != codes.Unavailable {
		t.Fatalf("open breaker: got %v, want Unavailable", err)
	}
	if got := b.Faults.Calls(); got != before {
		t.Errorf("open breaker: server calls: got %d, want %d", got, before)
	}
	opened := time.Now()
	b.Faults.Reset()
	b.Faults.Always(grpckittest.Fault{Delay: 100 * time.Millisecond})
	// The breaker turns half-open at its next call after its timeout:
	// there is no state to poll before that.
	wait.For(t, 5*time.Second, "the breaker's timeout to pass", func() bool { return time.Since(opened) > 150*time.Millisecond })
	sent := counter(t, reg, "grpckit_hedge_sent_total")
	before = b.Faults.Calls()
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("half-open breaker: got %v, want the probe's answer", err)
	}
	if got := b.Faults.Calls() - before; got != 1 {
		t.Errorf("half-open breaker: server calls: got %d, want 1 (the probe; its hedge rejected)", got)
	}
	if got := counter(t, reg, "grpckit_hedge_sent_total") - sent; got != 1 {
		t.Errorf("hedges tried: got %v, want 1", got)
	}
}
