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
			conn := grpckittest.NewServer(t, b.Register).Dial(t, append(tc.opts, grpckit.WithMetrics(reg))...)
			c := echov1.NewEchoServiceClient(conn)
			ctx := grpckittest.Context(t, 10*time.Second)
			if err := conn.WaitForReady(ctx); err != nil {
				t.Fatal(err)
			}
			if err := echoErr(ctx, c, "hi"); err != nil {
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

// TestHedgingInsideRetry and TestHedgingOutsideBreaker prove the assembly:
// retried calls are hedged (a hedge answers where an attempt hangs), and the
// breaker judges each hedged attempt (a half-open breaker lets the probe
// through and rejects its hedge).
func TestHedgingInsideRetry(t *testing.T) {
	b := &grpckittest.Backend{}
	reg := prometheus.NewRegistry()
	conn := grpckittest.NewServer(t, b.Register).Dial(t, grpckit.WithMetrics(reg),
		client.WithRetry(fastRetry, echoMethod),
		client.WithHedging(hedge.WithMethods(echoMethod), hedge.WithDelay(5*time.Millisecond), hedge.WithMaxAttempts(3)))
	c := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 30*time.Second)
	// Connected first: the first call would otherwise wait for the
	// connection, and its hedge would be sent meanwhile.
	if err := conn.WaitForReady(ctx); err != nil {
		t.Fatal(err)
	}

	// A failure, then an attempt that hangs: whether the failure ends the
	// first try before its hedge is sent (then the retry's first attempt
	// hangs and its hedge answers) or not (then the try's own hedges carry
	// it), only a hedge gets the call past the hanging attempt. Three
	// attempts per call cover either order of arrival.
	b.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
	b.Faults.Next(1, grpckittest.Fault{Hang: true})
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("retried and hedged: got %v, want success", err)
	}
	if got := b.Faults.Calls(); got < 3 {
		t.Errorf("server calls: got %d, want at least 3 (failed, hanging, answered)", got)
	}
	if got := counter(t, reg, "grpckit_hedge_sent_total"); got < 1 {
		t.Errorf("grpckit_hedge_sent_total: got %v, want at least 1", got)
	}
}

func TestHedgingOutsideBreaker(t *testing.T) {
	b := &grpckittest.Backend{}
	reg := prometheus.NewRegistry()
	const breakerTimeout = time.Second
	conn := grpckittest.NewServer(t, b.Register).Dial(t, grpckit.WithMetrics(reg),
		client.WithRetry(fastRetry, echoMethod),
		client.WithHedging(hedge.WithMethods(echoMethod), hedge.WithDelay(5*time.Millisecond)),
		client.WithBreaker(breaker.WithThreshold(2), breaker.WithTimeout(breakerTimeout)))
	c := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 30*time.Second)

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
	// The probe takes a second, far longer than the hedge's delay.
	b.Faults.Always(grpckittest.Fault{Delay: time.Second})
	// The breaker turns half-open at its next call after its timeout:
	// there is no state to poll before that.
	wait.For(t, 10*time.Second, "the breaker's timeout to pass", func() bool { return time.Since(opened) > breakerTimeout+50*time.Millisecond })
	sent := counter(t, reg, "grpckit_hedge_sent_total")
	before = b.Faults.Calls()
	if err := echoErr(ctx, c, "hi"); err != nil {
		t.Fatalf("half-open breaker: got %v, want the probe's answer", err)
	}
	if got := b.Faults.Calls() - before; got != 1 {
		t.Errorf("half-open breaker: server calls: got %d, want 1 (the probe; its hedges rejected)", got)
	}
	if got := counter(t, reg, "grpckit_hedge_sent_total") - sent; got != 1 {
		t.Errorf("hedges tried: got %v, want 1 (the first is rejected, which stops hedging the call)", got)
	}
}
