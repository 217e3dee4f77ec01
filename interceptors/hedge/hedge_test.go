package hedge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	_ "github.com/grpckit/grpckit/balancer/p2c"
	_ "github.com/grpckit/grpckit/balancer/wrr"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/hedge"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const echoMethod = "/grpckit.echo.v1.EchoService/Echo"

func newHedger(t testing.TB, opts ...hedge.Option) *hedge.Hedger {
	t.Helper()
	h, err := hedge.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

var schemes atomic.Int64

// cluster serves n backends on bare grpc-go servers and returns them with a
// bare client balancing over them with lb (p2c, wrr), whose calls go
// through h's interceptor, then through inner.
func cluster(t testing.TB, n int, lb string, h *hedge.Hedger, inner ...grpc.UnaryClientInterceptor) ([]*grpckittest.Backend, echov1.EchoServiceClient) {
	t.Helper()
	bs := make([]*grpckittest.Backend, n)
	var addrs []resolver.Address
	for i := range bs {
		bs[i] = &grpckittest.Backend{}
		addrs = append(addrs, resolver.Address{Addr: baregrpc.Serve(t, bs[i].Register)})
	}
	r := manual.NewBuilderWithScheme(fmt.Sprintf("hedgetest%d", schemes.Add(1)))
	r.InitialState(resolver.State{Addresses: addrs})
	var chain []grpc.UnaryClientInterceptor
	if h != nil {
		chain = append(chain, hedge.UnaryClientInterceptor(h))
	}
	chain = append(chain, inner...)
	cc, err := grpc.NewClient(r.Scheme()+":///test",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, lb)),
		grpc.WithChainUnaryInterceptor(chain...))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	c := echov1.NewEchoServiceClient(cc)
	// Connect to every backend before the test's calls, so that hedges
	// find the others ready: with streams, which are not hedged and leave
	// the hedging budget alone.
	ctx := grpckittest.Context(t, 10*time.Second)
	wait.For(t, 10*time.Second, "every backend reached", func() bool {
		for _, b := range bs {
			if b.Faults.Calls() == 0 {
				st, err := c.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "warm-up"}, grpc.WaitForReady(true))
				if err == nil {
					_, err = st.Recv()
				}
				if err != nil && !errors.Is(err, io.EOF) {
					t.Fatalf("warm-up: %v", err)
				}
				return false
			}
		}
		return true
	})
	return bs, c
}

func calls(bs []*grpckittest.Backend) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.Faults.Calls()
	}
	return out
}

// counter returns the value of the counter name{method=echoMethod} in reg.
func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" && l.GetValue() == echoMethod {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestNewInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  hedge.Option
	}{
		{"bad method", hedge.WithMethods("Echo")},
		{"negative delay", hedge.WithDelay(-time.Millisecond)},
		{"percentile 0", hedge.WithPercentile(0, 0, time.Second)},
		{"percentile 100", hedge.WithPercentile(100, 0, time.Second)},
		{"min above max", hedge.WithPercentile(90, time.Second, time.Millisecond)},
		{"one attempt", hedge.WithMaxAttempts(1)},
		{"too many attempts", hedge.WithMaxAttempts(hedge.MaxAttemptsLimit + 1)},
		{"budget ratio", hedge.WithBudget(1.5, 0)},
		{"budget floor", hedge.WithBudget(0.1, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := hedge.New(tc.opt); !errors.Is(err, hedge.ErrInvalid) {
				t.Errorf("New: got %v, want ErrInvalid", err)
			}
		})
	}
}

// slowFirst makes the first call to reach any of bs (from now on) hang
// until it is cancelled; the others answer at once, with a header saying
// which arrival they were. It returns the number of arrivals so far.
func slowFirst(bs []*grpckittest.Backend) *atomic.Int64 {
	var arrivals atomic.Int64
	for _, b := range bs {
		b.Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
			n := arrivals.Add(1)
			if n == 1 {
				<-ctx.Done()
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			_ = grpc.SetHeader(ctx, metadata.Pairs("arrival", fmt.Sprint(n)))
			return &echov1.EchoResponse{Message: req.GetMessage()}, nil
		}
	}
	return &arrivals
}

// TestHedgeWins: the first attempt hangs, the hedge answers from the other
// backend; its reply and header are the caller's.
func TestHedgeWins(t *testing.T) {
	for _, lb := range []string{"p2c", "wrr"} {
		t.Run(lb, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(5*time.Millisecond), hedge.WithRegisterer(reg))
			bs, c := cluster(t, 2, lb, h)
			before := calls(bs)
			slowFirst(bs)
			var hdr metadata.MD
			resp, err := c.Echo(grpckittest.Context(t, 10*time.Second), &echov1.EchoRequest{Message: "hi"}, grpc.Header(&hdr))
			if err != nil {
				t.Fatalf("Echo: %v", err)
			}
			if resp.GetMessage() != "hi" {
				t.Errorf("reply: got %q, want %q", resp.GetMessage(), "hi")
			}
			if got := hdr.Get("arrival"); len(got) != 1 || got[0] != "2" {
				t.Errorf("header arrival: got %v, want [2] (the hedge's)", got)
			}
			got := calls(bs)
			for i := range bs {
				if d := got[i] - before[i]; d != 1 {
					t.Errorf("backend %d calls: got %d, want 1 (the hedge goes to the other backend)", i, d)
				}
			}
			if got := counter(t, reg, "grpckit_hedge_sent_total"); got != 1 {
				t.Errorf("hedges sent: got %v, want 1", got)
			}
			if got := counter(t, reg, "grpckit_hedge_won_total"); got != 1 {
				t.Errorf("hedges won: got %v, want 1", got)
			}
		})
	}
}

// TestSnapshot: the state counts the calls, the hedges sent and won and
// the ones the budget refused, per method, and holds the budget's balance.
func TestSnapshot(t *testing.T) {
	// Each call deposits half a token: the second call's hedge spends the
	// first two calls' deposits, the third's is refused. The delay is long
	// enough that the fast calls never reach it.
	const delay = 100 * time.Millisecond
	h := newHedger(t, hedge.WithMethods("/grpckit.echo.v1.EchoService/*"), hedge.WithDelay(delay), hedge.WithBudget(0.5, 0))
	if st := h.Snapshot(); st.Calls != 0 || len(st.Methods) != 0 || st.MaxAttempts != 2 || st.Percentile != 0 {
		t.Errorf("Snapshot before any call: got %+v, want no calls, no methods, 2 attempts, a fixed delay", st)
	}
	bs, c := cluster(t, 2, "p2c", h)
	ctx := grpckittest.Context(t, 10*time.Second)
	echo := func(what string) {
		t.Helper()
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	echo("fast call")
	slowFirst(bs)
	echo("call whose first attempt hangs")
	for _, b := range bs {
		b.Faults.Always(grpckittest.Fault{Delay: 3 * delay})
	}
	echo("slow call")

	st := h.Snapshot()
	want := hedge.MethodState{Method: echoMethod, Delay: delay, Calls: 3, Sent: 1, Won: 1, Exhausted: 1}
	if len(st.Methods) != 1 || st.Methods[0] != want {
		t.Errorf("Snapshot().Methods: got %+v, want [%+v]", st.Methods, want)
	}
	if st.Calls != 3 || st.Sent != 1 || st.Won != 1 || st.Exhausted != 1 {
		t.Errorf("Snapshot totals: got %d calls, %d sent, %d won, %d exhausted, want 3, 1, 1, 1", st.Calls, st.Sent, st.Won, st.Exhausted)
	}
	if st.Available != 0.5 || st.Capacity != 500 {
		t.Errorf("Snapshot budget: got %v of %v, want 0.5 of 500", st.Available, st.Capacity)
	}

	// A percentile delay: warming up, the delay is max and not measured.
	hp := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithPercentile(90, time.Millisecond, 300*time.Millisecond))
	_, cp := cluster(t, 1, "p2c", hp)
	if _, err := cp.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
		t.Fatal(err)
	}
	st = hp.Snapshot()
	if st.Percentile != 90 || st.MinDelay != time.Millisecond || st.MaxDelay != 300*time.Millisecond ||
		len(st.Methods) != 1 || st.Methods[0].Delay != 300*time.Millisecond || st.Methods[0].Measured {
		t.Errorf("Snapshot with a percentile delay: got %+v, want p90 within [1ms, 300ms], the max delay, not measured", st)
	}
}

// TestHedgeAvoidsFirstEndpoint: with four backends that all answer after
// 30 ms and a 2 ms delay, every call makes two attempts, on two different
// backends.
func TestHedgeAvoidsFirstEndpoint(t *testing.T) {
	for _, lb := range []string{"p2c", "wrr"} {
		t.Run(lb, func(t *testing.T) {
			h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(2*time.Millisecond), hedge.WithBudget(1, 0))
			bs, c := cluster(t, 4, lb, h)
			// Each call's first attempt waits for its hedge to arrive, so
			// the hedge is sent and reaches a backend however slow the
			// machine: no race between the delay and the answer.
			type barrier struct {
				n    atomic.Int32
				both chan struct{}
			}
			var cur atomic.Pointer[barrier]
			for _, b := range bs {
				b.Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
					br := cur.Load()
					if br.n.Add(1) == 2 {
						close(br.both)
					}
					select {
					case <-br.both:
						return &echov1.EchoResponse{Message: req.GetMessage()}, nil
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
			}
			ctx := grpckittest.Context(t, 20*time.Second)
			for i := range 20 {
				cur.Store(&barrier{both: make(chan struct{})})
				before := calls(bs)
				if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				got := calls(bs)
				hit := 0
				for k := range bs {
					switch d := got[k] - before[k]; d {
					case 0:
					case 1:
						hit++
					default:
						t.Fatalf("call %d: backend %d got %d attempts, want at most 1 (calls before %v, after %v)", i, k, d, before, got)
					}
				}
				if hit != 2 {
					t.Fatalf("call %d: got attempts on %d backends, want 2 (calls before %v, after %v)", i, hit, before, got)
				}
			}
		})
	}
}

// TestNotHedged: methods not named, and calls that answer before the
// delay, make one attempt.
func TestNotHedged(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []hedge.Option
		delay time.Duration
	}{
		{"other method", []hedge.Option{hedge.WithMethods("/grpckit.echo.v1.EchoService/Other"), hedge.WithDelay(time.Millisecond)}, 50 * time.Millisecond},
		{"other service", []hedge.Option{hedge.WithMethods("/other.Svc/*"), hedge.WithDelay(time.Millisecond)}, 50 * time.Millisecond},
		{"no methods", []hedge.Option{hedge.WithDelay(time.Millisecond)}, 50 * time.Millisecond},
		{"answers before the delay", []hedge.Option{hedge.WithMethods(echoMethod), hedge.WithDelay(5 * time.Second)}, 0},
		{"warming up: max delay", []hedge.Option{hedge.WithMethods("/grpckit.echo.v1.EchoService/*"), hedge.WithPercentile(90, time.Millisecond, 5*time.Second)}, 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			bs, c := cluster(t, 2, "p2c", newHedger(t, append(tc.opts, hedge.WithRegisterer(reg))...))
			for _, b := range bs {
				b.Faults.Always(grpckittest.Fault{Delay: tc.delay})
			}
			before := calls(bs)
			for range 5 {
				if _, err := c.Echo(grpckittest.Context(t, 10*time.Second), &echov1.EchoRequest{Message: "hi"}); err != nil {
					t.Fatalf("Echo: %v", err)
				}
			}
			got := calls(bs)
			if n := got[0] + got[1] - before[0] - before[1]; n != 5 {
				t.Errorf("attempts: got %d, want 5 (one per call)", n)
			}
			if got := counter(t, reg, "grpckit_hedge_sent_total"); got != 0 {
				t.Errorf("hedges sent: got %v, want 0", got)
			}
		})
	}
}

// TestBudgetBoundsHedges: hedges stop when the budget is spent, and the
// metric counts the ones not sent.
func TestBudgetBoundsHedges(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ratio     float64
		calls     int
		wantHedge int
	}{
		{"none", 0, 20, 0},
		{"25%", 0.25, 20, 5},
		{"all", 1, 20, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(time.Millisecond), hedge.WithBudget(tc.ratio, 0), hedge.WithRegisterer(reg))
			bs, c := cluster(t, 2, "p2c", h)
			for _, b := range bs {
				b.Faults.Always(grpckittest.Fault{Delay: 20 * time.Millisecond})
			}
			before := calls(bs)
			ctx := grpckittest.Context(t, 20*time.Second)
			for range tc.calls {
				if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
					t.Fatalf("Echo: %v", err)
				}
			}
			got := calls(bs)
			extra := int(got[0]+got[1]-before[0]-before[1]) - tc.calls
			if extra != tc.wantHedge {
				t.Errorf("hedges reaching a backend: got %d, want %d", extra, tc.wantHedge)
			}
			if got := counter(t, reg, "grpckit_hedge_sent_total"); got != float64(tc.wantHedge) {
				t.Errorf("hedges sent: got %v, want %d", got, tc.wantHedge)
			}
			if got := counter(t, reg, "grpckit_hedge_budget_exhausted_total"); got != float64(tc.calls-tc.wantHedge) {
				t.Errorf("budget exhausted: got %v, want %d", got, tc.calls-tc.wantHedge)
			}
		})
	}
}

// TestOpenBreakerNoHedge: with the breaker below the hedging interceptor,
// an open breaker fails the call without any attempt reaching a backend,
// and a half-open breaker lets its probe through but rejects the hedges,
// which neither win nor lead to further hedges.
func TestOpenBreakerNoHedge(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(2*time.Millisecond), hedge.WithMaxAttempts(3), hedge.WithRegisterer(reg))
	p, err := breaker.New("test", breaker.WithThreshold(3), breaker.WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	bs, c := cluster(t, 2, "p2c", h, breaker.UnaryClientInterceptor(p))
	ctx := grpckittest.Context(t, 20*time.Second)
	for _, b := range bs {
		b.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	}
	for range 3 {
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); status.Code(err) != codes.Unavailable {
			t.Fatalf("Echo: got %v, want Unavailable", err)
		}
	}
	br := p
	if got := br.State(echoMethod); got != gobreaker.StateOpen {
		t.Fatalf("breaker: got %v, want open", got)
	}
	sent := counter(t, reg, "grpckit_hedge_sent_total")

	t.Run("open", func(t *testing.T) {
		before := calls(bs)
		_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		if !errors.Is(err, breaker.ErrRejected) && status.Convert(err).Message() != breaker.Message {
			t.Fatalf("Echo: got %v, want the breaker's rejection", err)
		}
		if got := calls(bs); got[0] != before[0] || got[1] != before[1] {
			t.Errorf("backend calls: got %v, want %v (none sent)", got, before)
		}
		if got := counter(t, reg, "grpckit_hedge_sent_total"); got != sent {
			t.Errorf("hedges sent: got %v, want %v", got, sent)
		}
	})

	t.Run("half-open", func(t *testing.T) {
		for _, b := range bs {
			b.Faults.Reset()
			b.Faults.Always(grpckittest.Fault{Delay: 100 * time.Millisecond})
		}
		wait.For(t, 5*time.Second, "the breaker to go half-open", func() bool { return br.State(echoMethod) == gobreaker.StateHalfOpen })
		before := calls(bs)
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatalf("Echo: got %v, want the probe's answer", err)
		}
		got := calls(bs)
		if n := got[0] + got[1] - before[0] - before[1]; n != 1 {
			t.Errorf("attempts reaching a backend: got %d, want 1 (the probe)", n)
		}
		// One hedge was tried and rejected; it stopped the third attempt.
		if got := counter(t, reg, "grpckit_hedge_sent_total") - sent; got != 1 {
			t.Errorf("hedges tried: got %v, want 1", got)
		}
		if got := counter(t, reg, "grpckit_hedge_won_total"); got != 0 {
			t.Errorf("hedges won: got %v, want 0", got)
		}
	})
}

// TestErrors: a first attempt's error other than Unavailable ends the call
// at once; Unavailable leaves the hedge in flight to answer.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		first    grpckittest.Fault // the first attempt's
		hedge    grpckittest.Fault // the hedge's
		wantCode codes.Code
		maxTime  time.Duration
	}{
		{"InvalidArgument before the delay", grpckittest.Fault{Code: codes.InvalidArgument}, grpckittest.Fault{}, codes.InvalidArgument, 5 * time.Second},
		{"InvalidArgument with a hedge in flight", grpckittest.Fault{Delay: 30 * time.Millisecond, Code: codes.InvalidArgument}, grpckittest.Fault{Delay: 10 * time.Second}, codes.InvalidArgument, 5 * time.Second},
		{"Unavailable with a hedge in flight", grpckittest.Fault{Delay: 30 * time.Millisecond, Code: codes.Unavailable}, grpckittest.Fault{Delay: 100 * time.Millisecond}, codes.OK, 5 * time.Second},
		{"both Unavailable", grpckittest.Fault{Delay: 30 * time.Millisecond, Code: codes.Unavailable}, grpckittest.Fault{Code: codes.Unavailable}, codes.Unavailable, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(5*time.Millisecond))
			bs, c := cluster(t, 1, "p2c", h)
			bs[0].Faults.Next(1, tc.first)
			bs[0].Faults.Next(1, tc.hedge)
			start := time.Now()
			_, err := c.Echo(grpckittest.Context(t, 20*time.Second), &echov1.EchoRequest{Message: "hi"})
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code: got %v (%v), want %v", got, err, tc.wantCode)
			}
			if took := time.Since(start); took > tc.maxTime {
				t.Errorf("took %v, want the call to end before the slow attempt", took)
			}
		})
	}
}

// TestCallerCancel: the caller's cancellation ends every attempt, and the
// interceptor returns only after they have ended.
func TestCallerCancel(t *testing.T) {
	h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(2*time.Millisecond))
	bs, c := cluster(t, 2, "p2c", h)
	var started, ended atomic.Int64
	for _, b := range bs {
		b.Handler = func(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
			started.Add(1)
			defer ended.Add(1)
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		done <- err
	}()
	wait.For(t, 5*time.Second, "both attempts to reach a backend", func() bool { return started.Load() == 2 })
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("Echo: got %v, want Canceled", err)
	}
	wait.For(t, 5*time.Second, "both attempts to end on the servers", func() bool { return ended.Load() == 2 })
}

// TestPercentileDelay: once warmed up, the delay follows the latency: the
// first attempts answer in about 2 ms, so a hedge goes after 2 to 20 ms;
// one that hangs is hedged.
func TestPercentileDelay(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithPercentile(90, time.Millisecond, 10*time.Second), hedge.WithBudget(1, 0), hedge.WithRegisterer(reg))
	bs, c := cluster(t, 2, "p2c", h)
	for _, b := range bs {
		b.Faults.Always(grpckittest.Fault{Delay: 2 * time.Millisecond})
	}
	ctx := grpckittest.Context(t, 30*time.Second)
	for range 64 {
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	sent := counter(t, reg, "grpckit_hedge_sent_total")
	for _, b := range bs {
		b.Faults.Reset()
	}
	slowFirst(bs)
	start := time.Now()
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v, want the hedge to answer long before the 10 s max delay", took)
	}
	if got := counter(t, reg, "grpckit_hedge_won_total"); got < 1 {
		t.Errorf("hedges won: got %v, want at least 1 (sent before: %v)", got, sent)
	}
}

// TestSpanEvents: the call's span gets hedge.sent and hedge.won.
func TestSpanEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(time.Millisecond))
	var attempts atomic.Int32
	invoker := func(ctx context.Context, _ string, _, reply any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		if attempts.Add(1) == 1 {
			<-ctx.Done()
			return status.FromContextError(ctx.Err()).Err()
		}
		return nil
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	err := hedge.UnaryClientInterceptor(h)(ctx, echoMethod, &echov1.EchoRequest{}, &echov1.EchoResponse{}, nil, invoker)
	span.End()
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	var got []string
	for _, e := range rec.Ended()[0].Events() {
		got = append(got, e.Name)
	}
	if want := []string{"hedge.sent", "hedge.won"}; !slices.Equal(got, want) {
		t.Errorf("span events: got %v, want %v", got, want)
	}
}
