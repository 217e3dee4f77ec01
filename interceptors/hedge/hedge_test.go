package hedge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
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
	"github.com/grpckit/grpckit/internal/pickhint"
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
// through h's interceptor, then through inner. Every attempt is tagged
// (see tagAttempt): cluster puts markCaller outside h's interceptor and
// tagAttempt innermost, after inner.
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
	// Benchmarks measure the hedger alone, without the tests' tagging.
	_, bench := t.(*testing.B)
	var chain []grpc.UnaryClientInterceptor
	if !bench {
		chain = append(chain, markCaller)
	}
	if h != nil {
		chain = append(chain, hedge.UnaryClientInterceptor(h))
	}
	chain = append(chain, inner...)
	if !bench {
		chain = append(chain, tagAttempt)
	}
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

// Attempts are told apart by what the hedger does with them, never by the
// order in which they reach the servers: on a loaded machine a hedge may
// overtake the first attempt, or even be invoked before it (when the
// caller's goroutine stalls for longer than the delay). The first attempt
// is the one that writes the caller's reply (as UnaryClientInterceptor
// documents; each hedge has its own): markCaller, outside the hedger,
// puts the caller's reply in the context, and tagAttempt, inside it,
// compares.
type callerReplyKey struct{}

func markCaller(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(context.WithValue(ctx, callerReplyKey{}, reply), method, req, reply, cc, opts...)
}

// isFirst reports whether the attempt with ctx and reply, inside the
// hedger, is its call's first.
func isFirst(ctx context.Context, reply any) bool {
	r := ctx.Value(callerReplyKey{})
	return r != nil && r == reply
}

// tagAttempt sends each attempt with the metadata attempt=first or
// attempt=hedge; a hedge also sends avoid=the addresses the hedger told
// the balancer to avoid, comma-separated: empty when the hedge left before
// the attempts before it were picked.
func tagAttempt(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if isFirst(ctx, reply) {
		ctx = metadata.AppendToOutgoingContext(ctx, "attempt", "first")
	} else {
		var avoid []string
		if h := pickhint.FromContext(ctx); h != nil {
			avoid = h.Avoid
		}
		ctx = metadata.AppendToOutgoingContext(ctx, "attempt", "hedge", "avoid", strings.Join(avoid, ","))
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// hedgeAttempt reports whether the call a handler serves is a hedge, and
// the addresses it was to avoid (see tagAttempt).
func hedgeAttempt(ctx context.Context) (hedged bool, avoid string) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("attempt"); len(v) != 1 || v[0] != "hedge" {
		return false, ""
	}
	if v := md.Get("avoid"); len(v) == 1 {
		avoid = v[0]
	}
	return true, avoid
}

// gateTimeout bounds every wait of a handler at a gate: it only ends a
// test that is failing anyway (a gate that never opens), with an error
// that says so instead of a hang.
const gateTimeout = 10 * time.Second

// gate is a barrier the handlers wait at: closed once, by an event of the
// test (an attempt arriving, an error coming back), never by time.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// await waits until g (nil: none) opens or cond (nil: none) holds, polling
// cond every millisecond. It reports false if ctx ends or gateTimeout
// passes first.
func await(ctx context.Context, g *gate, cond func() bool) bool {
	var opened <-chan struct{}
	if g != nil {
		opened = g.ch
	}
	var tick <-chan time.Time
	if cond != nil {
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		tick = tk.C
	}
	timeout := time.NewTimer(gateTimeout)
	defer timeout.Stop()
	for {
		if cond != nil && cond() {
			return true
		}
		select {
		case <-opened:
			return true
		case <-ctx.Done():
			return false
		case <-timeout.C:
			return false
		case <-tick:
		}
	}
}

// gateErr is the error of a handler whose await returned false.
func gateErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	return status.Errorf(codes.Internal, "hedge_test: a gate stayed closed for %v", gateTimeout)
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

// hangFirst makes the first attempt of the next call to reach bs (from
// now on) hang until it is cancelled, and that call's hedges wait until it
// has arrived, then answer with the headers attempt=hedge and avoided=the
// addresses the hedge was to avoid. The other calls answer at once.
// Attempts are told apart by their tags, not by the order in which they
// arrive; the hedge waits so that both attempts reach a backend whatever
// the order.
func hangFirst(bs []*grpckittest.Backend) {
	var firsts atomic.Int64
	arrived := newGate()
	for _, b := range bs {
		b.Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
			if hedged, avoid := hedgeAttempt(ctx); hedged {
				if !await(ctx, arrived, nil) {
					return nil, gateErr(ctx)
				}
				_ = grpc.SetHeader(ctx, metadata.Pairs("attempt", "hedge", "avoided", avoid))
			} else if firsts.Add(1) == 1 {
				arrived.open()
				<-ctx.Done()
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			return &echov1.EchoResponse{Message: req.GetMessage()}, nil
		}
	}
}

// TestHedgeWins: the first attempt hangs, the hedge answers from the other
// backend; its reply and header are the caller's.
func TestHedgeWins(t *testing.T) {
	for _, lb := range []string{"p2c", "wrr"} {
		t.Run(lb, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			// The delay leaves the first attempt ample time to be picked
			// before the hedge leaves (the hedge avoids its endpoint
			// only then); the assertion on the backends allows for it
			// not to have been.
			h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(20*time.Millisecond), hedge.WithRegisterer(reg))
			bs, c := cluster(t, 2, lb, h)
			before := calls(bs)
			hangFirst(bs)
			var hdr metadata.MD
			resp, err := c.Echo(grpckittest.Context(t, 20*time.Second), &echov1.EchoRequest{Message: "hi"}, grpc.Header(&hdr))
			if err != nil {
				t.Fatalf("Echo: %v", err)
			}
			if resp.GetMessage() != "hi" {
				t.Errorf("reply: got %q, want %q", resp.GetMessage(), "hi")
			}
			if got := hdr.Get("attempt"); len(got) != 1 || got[0] != "hedge" {
				t.Errorf("header attempt: got %v, want [hedge] (the hedge's)", got)
			}
			got := calls(bs)
			if n := got[0] + got[1] - before[0] - before[1]; n != 2 {
				t.Errorf("attempts reaching a backend: got %d, want 2", n)
			}
			if avoided := hdr.Get("avoided"); len(avoided) == 1 && avoided[0] != "" {
				for i := range bs {
					if d := got[i] - before[i]; d != 1 {
						t.Errorf("backend %d calls: got %d, want 1 (the hedge goes to the other backend)", i, d)
					}
				}
			} else {
				// The hedge left before the first attempt was picked
				// (the caller's goroutine stalled longer than the
				// delay): it had nothing to avoid.
				t.Logf("the hedge had no endpoint to avoid (header avoided %v): backend calls %v → %v not checked", avoided, before, got)
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
	// first two calls' deposits, the third's is refused. The first call
	// answers at once, far within the delay; the other two are held by
	// their handlers until their hedge has been sent or refused.
	const delay = time.Second
	h := newHedger(t, hedge.WithMethods("/grpckit.echo.v1.EchoService/*"), hedge.WithDelay(delay), hedge.WithBudget(0.5, 0))
	if st := h.Snapshot(); st.Calls != 0 || len(st.Methods) != 0 || st.MaxAttempts != 2 || st.Percentile != 0 {
		t.Errorf("Snapshot before any call: got %+v, want no calls, no methods, 2 attempts, a fixed delay", st)
	}
	bs, c := cluster(t, 2, "p2c", h)
	ctx := grpckittest.Context(t, 20*time.Second)
	echo := func(what string) {
		t.Helper()
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	echo("fast call")
	hangFirst(bs)
	echo("call whose first attempt hangs")
	for _, b := range bs {
		b.Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
			if !await(ctx, nil, func() bool { return h.Snapshot().Exhausted > 0 }) {
				return nil, gateErr(ctx)
			}
			return &echov1.EchoResponse{Message: req.GetMessage()}, nil
		}
	}
	echo("call answered once its hedge is refused")

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

// TestHedgeAvoidsFirstEndpoint: with four backends and a 20 ms delay,
// every call makes two attempts, on two different backends.
func TestHedgeAvoidsFirstEndpoint(t *testing.T) {
	for _, lb := range []string{"p2c", "wrr"} {
		t.Run(lb, func(t *testing.T) {
			h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(20*time.Millisecond), hedge.WithBudget(1, 0))
			bs, c := cluster(t, 4, lb, h)
			// Each call's first attempt waits for its hedge to arrive, so
			// the hedge is sent and reaches a backend however slow the
			// machine: no race between the delay and the answer.
			type barrier struct {
				n       atomic.Int32
				both    chan struct{}
				avoided atomic.Bool // the hedge had the first attempt's endpoint to avoid
			}
			var cur atomic.Pointer[barrier]
			for _, b := range bs {
				b.Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
					br := cur.Load()
					if hedged, avoid := hedgeAttempt(ctx); hedged && avoid != "" {
						br.avoided.Store(true)
					}
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
			// The hedge avoids the first attempt's endpoint if the first
			// attempt was picked when the hedge left: almost always, the
			// delay being ample, but not if the caller's goroutine stalled
			// for longer. Such a call proves nothing about avoidance and
			// is not counted; 20 calls that do must avoid.
			ctx := grpckittest.Context(t, 30*time.Second)
			const want, most = 20, 200
			checked := 0
			for i := 0; checked < want; i++ {
				if i == most {
					t.Fatalf("only %d of %d calls sent their hedge with an endpoint to avoid, want %d", checked, most, want)
				}
				br := &barrier{both: make(chan struct{})}
				cur.Store(br)
				before := calls(bs)
				if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				got := calls(bs)
				total, hit := int64(0), 0
				for k := range bs {
					d := got[k] - before[k]
					total += d
					if d > 0 {
						hit++
					}
				}
				if total != 2 {
					t.Fatalf("call %d: got %d attempts, want 2 (calls before %v, after %v)", i, total, before, got)
				}
				if !br.avoided.Load() {
					t.Logf("call %d: the hedge left before the first attempt was picked; not counted", i)
					continue
				}
				checked++
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
			// Every call tries a hedge, and every hedge sent reaches a
			// backend, however slow the machine: the first attempt
			// answers only once its hedge has arrived or the budget has
			// refused it, and the hedge only once the first attempt has
			// arrived (so neither is cancelled before it is counted).
			type call struct {
				exhausted    int64 // the hedger's count before the call
				first, hedge *gate // opened when each attempt arrives
			}
			var cur atomic.Pointer[call]
			for _, b := range bs {
				b.Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
					cl := cur.Load()
					var ok bool
					if hedged, _ := hedgeAttempt(ctx); hedged {
						cl.hedge.open()
						ok = await(ctx, cl.first, nil)
					} else {
						cl.first.open()
						ok = await(ctx, cl.hedge, func() bool { return h.Snapshot().Exhausted > cl.exhausted })
					}
					if !ok {
						return nil, gateErr(ctx)
					}
					return &echov1.EchoResponse{Message: req.GetMessage()}, nil
				}
			}
			before := calls(bs)
			ctx := grpckittest.Context(t, 30*time.Second)
			for range tc.calls {
				cur.Store(&call{exhausted: h.Snapshot().Exhausted, first: newGate(), hedge: newGate()})
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
	// The delay is also the time between the rejected hedge and the
	// third attempt, which the rejection must stop first: ample.
	const delay = 500 * time.Millisecond
	h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(delay), hedge.WithMaxAttempts(3), hedge.WithRegisterer(reg))
	// The breaker stays open for a second: the time the open phase of the
	// test has (it takes milliseconds), and the time the test waits for
	// it to turn half-open.
	const breakerTimeout = time.Second
	p, err := breaker.New("test", breaker.WithThreshold(3), breaker.WithTimeout(breakerTimeout))
	if err != nil {
		t.Fatal(err)
	}
	// In the half-open phase, the probe answers only once the breaker has
	// rejected its hedge: observe sees the rejections, above the breaker.
	var rejected atomic.Pointer[gate]
	observe := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if g := rejected.Load(); g != nil && !isFirst(ctx, reply) && errors.Is(err, breaker.ErrRejected) {
			g.open()
		}
		return err
	}
	bs, c := cluster(t, 2, "p2c", h, observe, breaker.UnaryClientInterceptor(p))
	for _, b := range bs {
		b.Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
			if g := rejected.Load(); g != nil && !await(ctx, g, nil) {
				return nil, gateErr(ctx)
			}
			return &echov1.EchoResponse{Message: req.GetMessage()}, nil
		}
	}
	ctx := grpckittest.Context(t, 30*time.Second)
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
		}
		rejected.Store(newGate())
		wait.For(t, 10*time.Second, "the breaker to go half-open", func() bool { return br.State(echoMethod) == gobreaker.StateHalfOpen })
		before := calls(bs)
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatalf("Echo: got %v, want the probe's answer (after its hedge's rejection)", err)
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
// at once; Unavailable leaves the hedge in flight to answer. The handler
// plays each attempt's part by its tag, whichever arrives first.
func TestErrors(t *testing.T) {
	const (
		hang       = "hang"        // the hedge waits until it is cancelled
		afterFirst = "after first" // the hedge answers once the first attempt's error is back at the client
		fail       = "fail"        // the hedge fails with Unavailable at once
	)
	for _, tc := range []struct {
		name       string
		firstWaits bool       // the first attempt fails only once the hedge has reached the backend
		firstCode  codes.Code // the first attempt's error
		hedge      string
		wantCode   codes.Code
		wantCalls  int64 // attempts reaching the backend; 0: 1 or 2
	}{
		// Mostly before the delay; a hedge sent on a slow machine hangs.
		{"InvalidArgument before the delay", false, codes.InvalidArgument, hang, codes.InvalidArgument, 0},
		{"InvalidArgument with a hedge in flight", true, codes.InvalidArgument, hang, codes.InvalidArgument, 2},
		{"Unavailable with a hedge in flight", true, codes.Unavailable, afterFirst, codes.OK, 2},
		{"both Unavailable", true, codes.Unavailable, fail, codes.Unavailable, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(5*time.Millisecond))
			firstFailed, hedgeArrived := newGate(), newGate()
			watch := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoker(ctx, method, req, reply, cc, opts...)
				if err != nil && isFirst(ctx, reply) {
					firstFailed.open()
				}
				return err
			}
			bs, c := cluster(t, 1, "p2c", h, watch)
			bs[0].Handler = func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
				if hedged, _ := hedgeAttempt(ctx); !hedged {
					if tc.firstWaits && !await(ctx, hedgeArrived, nil) {
						return nil, gateErr(ctx)
					}
					return nil, status.Error(tc.firstCode, "first attempt fails")
				}
				hedgeArrived.open()
				switch tc.hedge {
				case hang:
					<-ctx.Done()
					return nil, status.FromContextError(ctx.Err()).Err()
				case afterFirst:
					if !await(ctx, firstFailed, nil) {
						return nil, gateErr(ctx)
					}
					return &echov1.EchoResponse{Message: req.GetMessage()}, nil
				default:
					return nil, status.Error(codes.Unavailable, "hedge fails")
				}
			}
			before := bs[0].Faults.Calls()
			start := time.Now()
			_, err := c.Echo(grpckittest.Context(t, 20*time.Second), &echov1.EchoRequest{Message: "hi"})
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code: got %v (%v), want %v", got, err, tc.wantCode)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v, want the call to end before the slow attempt", took)
			}
			if n := bs[0].Faults.Calls() - before; tc.wantCalls != 0 && n != tc.wantCalls {
				t.Errorf("attempts reaching the backend: got %d, want %d", n, tc.wantCalls)
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
// first attempts answer in about 2 ms, so a hedge goes after a few ms, long
// before the 10 s max; one that hangs is hedged, and the hedge answers.
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
	sent, won := counter(t, reg, "grpckit_hedge_sent_total"), counter(t, reg, "grpckit_hedge_won_total")
	for _, b := range bs {
		b.Faults.Reset()
	}
	hangFirst(bs)
	start := time.Now()
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v, want the hedge to answer long before the 10 s max delay", took)
	}
	// The first attempt (by its tag, whichever arrived first) hangs: the
	// answer can only be the hedge's.
	if got := counter(t, reg, "grpckit_hedge_sent_total") - sent; got != 1 {
		t.Errorf("hedges sent by the last call: got %v, want 1", got)
	}
	if got := counter(t, reg, "grpckit_hedge_won_total") - won; got != 1 {
		t.Errorf("hedges won by the last call: got %v, want 1", got)
	}
}

// TestSpanEvents: the call's span gets hedge.sent and hedge.won.
func TestSpanEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	h := newHedger(t, hedge.WithMethods(echoMethod), hedge.WithDelay(time.Millisecond))
	// The first attempt, the one given the caller's reply (not the first
	// invoked: the hedge may be, if this goroutine stalls), hangs.
	callerReply := &echov1.EchoResponse{}
	invoker := func(ctx context.Context, _ string, _, reply any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		if reply == any(callerReply) {
			<-ctx.Done()
			return status.FromContextError(ctx.Err()).Err()
		}
		return nil
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	err := hedge.UnaryClientInterceptor(h)(ctx, echoMethod, &echov1.EchoRequest{}, callerReply, nil, invoker)
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
