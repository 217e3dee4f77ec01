package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/interceptors/shed"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

func echoCode(ctx context.Context, c echov1.EchoServiceClient, msg string) codes.Code {
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: msg})
	return status.Code(err)
}

// counterValue returns the value of the counter or gauge name{labels} in reg.
func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestWithRateLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := &grpckittest.Backend{}
	// One token per 1,000 s: none comes back while the test runs.
	in := grpckittest.NewServer(t, b.Register, grpckit.WithMetrics(reg), server.WithRateLimit(0.001, 3))
	c := echov1.NewEchoServiceClient(in.Dial(t))
	ctx := grpckittest.Context(t, 10*time.Second)
	rejected := 0
	for range 3 + 2 {
		if echoCode(ctx, c, "hi") == codes.ResourceExhausted {
			rejected++
		}
	}
	if rejected != 2 {
		t.Errorf("burst of 5 with burst 3: got %d ResourceExhausted, want 2", rejected)
	}
	if got := b.Faults.Calls(); got != 3 {
		t.Errorf("handler calls: got %d, want 3", got)
	}
	if got := counterValue(t, reg, "grpckit_ratelimit_rejected_total", map[string]string{"limiter": "server_rate", "reason": "rate"}); got != 2 {
		t.Errorf("grpckit_ratelimit_rejected_total: got %v, want 2", got)
	}
}

func TestWithRateLimitKeyed(t *testing.T) {
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, server.WithRateLimit(0.001, 2,
		ratelimit.WithKey(ratelimit.ByMetadata("tenant"))))
	c := echov1.NewEchoServiceClient(in.Dial(t))
	ctx := grpckittest.Context(t, 10*time.Second)
	noisy := metadata.AppendToOutgoingContext(ctx, "tenant", "noisy")
	quiet := metadata.AppendToOutgoingContext(ctx, "tenant", "quiet")
	rejected := 0
	for range 10 {
		if echoCode(noisy, c, "hi") == codes.ResourceExhausted {
			rejected++
		}
	}
	if rejected != 8 {
		t.Errorf("noisy tenant: got %d rejected, want 8", rejected)
	}
	for i := range 2 {
		if code := echoCode(quiet, c, "hi"); code != codes.OK {
			t.Errorf("quiet tenant call %d: got %v, want OK", i, code)
		}
	}
}

func TestWithConcurrencyLimit(t *testing.T) {
	const limit, extra = 2, 3
	b := &grpckittest.Backend{}
	b.Faults.Next(limit, grpckittest.Fault{Hang: true})
	in := grpckittest.NewServer(t, b.Register, server.WithConcurrencyLimit(limit))
	c := echov1.NewEchoServiceClient(in.Dial(t))
	slow, cancel := context.WithCancel(grpckittest.Context(t, 20*time.Second))
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = echoCode(slow, c, "hang")
		}()
	}
	wait.For(t, 10*time.Second, "condition", func() bool { return b.Faults.Calls() == limit })
	ctx := grpckittest.Context(t, 10*time.Second)
	rejected := 0
	for range extra {
		if echoCode(ctx, c, "hi") == codes.ResourceExhausted {
			rejected++
		}
	}
	cancel()
	wg.Wait()
	if rejected != extra {
		t.Errorf("%d calls beyond %d in flight: got %d rejected, want %d", extra, limit, rejected, extra)
	}
	wait.For(t, 10*time.Second, "condition", func() bool { return echoCode(ctx, c, "hi") == codes.OK })
}

func TestWithLoadShedding(t *testing.T) {
	// Calls of a fraction of a millisecond make the estimate of what the
	// server can hold in flight far below 1: once a complete bucket has
	// measurements, the floor of 1 is the limit (grpckit_shed_limit shows it).
	reg := prometheus.NewRegistry()
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register, grpckit.WithMetrics(reg),
		// A 10 s window: the limit stays at 1 through a stall of seconds
		// between the warm-up and the call beyond it.
		server.WithLoadShedding(shed.WithWindow(10*time.Second, 10), shed.WithMinLimit(1)))
	c := echov1.NewEchoServiceClient(in.Dial(t))
	ctx := grpckittest.Context(t, 10*time.Second)
	wait.For(t, 10*time.Second, "the shedder's limit of 1", func() bool {
		if code := echoCode(ctx, c, "hi"); code != codes.OK {
			t.Fatalf("warm-up: got %v, want OK", code)
		}
		return counterValue(t, reg, "grpckit_shed_limit", nil) == 1
	})
	slow, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	n := b.Faults.Calls()
	b.Faults.Next(1, grpckittest.Fault{Hang: true})
	go func() { defer close(done); _ = echoCode(slow, c, "hang") }()
	wait.For(t, 10*time.Second, "the held call", func() bool { return b.Faults.Calls() == n+1 })
	if code := echoCode(ctx, c, "hi"); code != codes.ResourceExhausted {
		t.Errorf("call beyond the limit of 1: got %v, want ResourceExhausted", code)
	}
	cancel()
	<-done
	// The handler ends a moment after the client sees Canceled.
	wait.For(t, 10*time.Second, "condition", func() bool { return echoCode(ctx, c, "hi") == codes.OK })
}

func TestResilienceOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  server.Option
	}{
		{"rate 0", server.WithRateLimit(0, 1)},
		{"burst 0", server.WithRateLimit(1, 0)},
		{"concurrency 0", server.WithConcurrencyLimit(0)},
		{"shed min limit 0", server.WithLoadShedding(shed.WithMinLimit(0))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.New(grpckit.WithInsecure(), tc.opt)
			if err == nil {
				t.Fatal("New: got nil error, want one")
			}
			if !errors.Is(err, ratelimit.ErrInvalid) && !errors.Is(err, shed.ErrInvalid) && tc.name != "concurrency 0" {
				t.Errorf("New: got %v, want it to wrap the package's ErrInvalid", err)
			}
		})
	}
}
