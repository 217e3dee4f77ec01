package breaker_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/recovery"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/clock"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const echoMethod = "/grpckit.echo.v1.EchoService/Echo"

// backend starts an echo backend on a bare grpc-go server, with recovery
// (a panicking handler answers Internal), and returns it and its address;
// handler, if given, answers its Echo calls.
func backend(t *testing.T, handler ...func(context.Context, *echov1.EchoRequest) (*echov1.EchoResponse, error)) (*grpckittest.Backend, string) {
	t.Helper()
	b := &grpckittest.Backend{}
	if len(handler) > 0 {
		b.Handler = handler[0]
	}
	quiet := recovery.WithLogger(slog.New(slog.DiscardHandler))
	return b, baregrpc.Serve(t, b.Register, grpc.ChainUnaryInterceptor(recovery.UnaryServerInterceptor(quiet)),
		grpc.ChainStreamInterceptor(recovery.StreamServerInterceptor(quiet)))
}

// dial starts an echo backend and a bare grpc-go client guarded by p;
// handler, if given, answers the backend's Echo calls.
func dial(t *testing.T, p breaker.Policy, handler ...func(context.Context, *echov1.EchoRequest) (*echov1.EchoResponse, error)) (*grpckittest.Backend, echov1.EchoServiceClient) {
	t.Helper()
	b, addr := backend(t, handler...)
	conn := baregrpc.Dial(t, addr,
		grpc.WithChainUnaryInterceptor(breaker.UnaryClientInterceptor(p)),
		grpc.WithChainStreamInterceptor(breaker.StreamClientInterceptor(p)))
	return b, echov1.NewEchoServiceClient(conn)
}

func call(ctx context.Context, c echov1.EchoServiceClient, msg string) error {
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: msg})
	return err
}

func TestTripAndRecover(t *testing.T) {
	var fake clock.Fake
	reg := prometheus.NewRegistry()
	b, err := breaker.New("test", breaker.WithThreshold(3), breaker.WithTimeout(5*time.Second),
		breaker.WithClock(fake.Now), breaker.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	// The probe ("slow") waits at a gate until the test has seen a second
	// call rejected while it was in flight.
	gate := make(chan struct{})
	in, c := dial(t, b, func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		if req.GetMessage() == "slow" {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	})
	ctx := grpckittest.Context(t, 20*time.Second)

	in.Faults.Next(3, grpckittest.Fault{Code: codes.Unavailable})
	for i := range 3 {
		if code := status.Code(call(ctx, c, "fail")); code != codes.Unavailable {
			t.Fatalf("failing call %d: got %v, want Unavailable", i, code)
		}
	}
	if got := b.State(echoMethod); got != gobreaker.StateOpen {
		t.Fatalf("state after 3 failures: got %v, want open", got)
	}
	// Open: calls fail fast without reaching the server.
	for range 5 {
		err := call(ctx, c, "hi")
		if status.Code(err) != codes.Unavailable || !errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("open breaker: got %v, want Unavailable matching ErrRejected", err)
		}
		if msg := status.Convert(err).Message(); msg != breaker.Message {
			t.Errorf("message: got %q, want %q", msg, breaker.Message)
		}
	}
	if got := in.Faults.Calls(); got != 3 {
		t.Fatalf("server calls while open: got %d, want 3", got)
	}
	if got := b.States(); len(got) != 1 || got[echoMethod] != gobreaker.StateOpen {
		t.Errorf("States: got %v, want map[%s:open]", got, echoMethod)
	}
	if got := metric(t, reg, "grpckit_breaker_rejected_total", "key", echoMethod); got != 5 {
		t.Errorf("grpckit_breaker_rejected_total: got %v, want 5", got)
	}

	// After the timeout one probe goes through; others wait their turn.
	fake.Advance(5 * time.Second)
	probe := make(chan error, 1)
	go func() { probe <- call(ctx, c, "slow") }()
	wait.For(t, 10*time.Second, "the probe at the server", func() bool { return in.Faults.Calls() == 4 })
	if err := call(ctx, c, "hi"); !errors.Is(err, breaker.ErrRejected) {
		t.Errorf("second call while half-open: got %v, want ErrRejected", err)
	}
	close(gate)
	if err := <-probe; err != nil {
		t.Fatalf("probe: got %v, want success", err)
	}
	if got := b.State(echoMethod); got != gobreaker.StateClosed {
		t.Fatalf("state after a successful probe: got %v, want closed", got)
	}
	for range 3 {
		if err := call(ctx, c, "hi"); err != nil {
			t.Fatalf("closed breaker: got %v, want success", err)
		}
	}
	if got := in.Faults.Calls(); got != 7 {
		t.Errorf("server calls: got %d, want 7", got)
	}
	if got := metric(t, reg, "grpckit_breaker_state", "key", echoMethod); got != 0 {
		t.Errorf("grpckit_breaker_state: got %v, want 0", got)
	}
	for _, tr := range [][2]string{{"closed", "open"}, {"open", "half-open"}, {"half-open", "closed"}} {
		if got := metric(t, reg, "grpckit_breaker_transitions_total", "key", echoMethod, "from", tr[0], "to", tr[1]); got != 1 {
			t.Errorf("transitions %s→%s: got %v, want 1", tr[0], tr[1], got)
		}
	}

	// Snapshot: what the admin page shows.
	snap := b.Snapshot()
	if len(snap) != 1 {
		t.Fatalf("Snapshot: got %d breakers, want 1", len(snap))
	}
	st := snap[0]
	if st.Key != echoMethod || st.State != "closed" || st.Rejected != 6 || st.Successes != 3 {
		t.Errorf("Snapshot: got %+v, want key %s, closed, 6 rejected, 3 successes", st, echoMethod)
	}
	var path []string
	for _, tr := range st.Transitions {
		path = append(path, tr.From+"→"+tr.To)
		if tr.Time.IsZero() {
			t.Errorf("transition %s→%s has no time", tr.From, tr.To)
		}
	}
	if want := []string{"closed→open", "open→half-open", "half-open→closed"}; !slices.Equal(path, want) {
		t.Errorf("Snapshot transitions: got %v, want %v", path, want)
	}
}

func TestSnapshotKeepsLatestTransitions(t *testing.T) {
	var fake clock.Fake
	b, err := breaker.New("test", breaker.WithThreshold(1), breaker.WithTimeout(time.Second), breaker.WithClock(fake.Now))
	if err != nil {
		t.Fatal(err)
	}
	in, c := dial(t, b)
	ctx := grpckittest.Context(t, 20*time.Second)
	// Each round: a failure opens it, the timeout half-opens it, a failed
	// probe opens it again.
	for range 20 {
		in.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
		if err := call(ctx, c, "x"); status.Code(err) != codes.Unavailable {
			t.Fatalf("failing call: got %v, want Unavailable", err)
		}
		fake.Advance(time.Second)
	}
	st := b.Snapshot()[0]
	if len(st.Transitions) != 32 {
		t.Fatalf("transitions kept: got %d, want the latest 32", len(st.Transitions))
	}
	last := st.Transitions[len(st.Transitions)-1]
	if last.From != "half-open" || last.To != "open" {
		t.Errorf("latest transition: got %s→%s, want half-open→open", last.From, last.To)
	}
	for i := 1; i < len(st.Transitions); i++ {
		if st.Transitions[i].From != st.Transitions[i-1].To || st.Transitions[i].Time.Before(st.Transitions[i-1].Time) {
			t.Fatalf("transitions out of order at %d: %+v", i, st.Transitions)
		}
	}
}

func TestFailedProbeReopens(t *testing.T) {
	var fake clock.Fake
	b, _ := breaker.New("test", breaker.WithThreshold(1), breaker.WithTimeout(time.Second), breaker.WithClock(fake.Now))
	in, c := dial(t, b)
	ctx := grpckittest.Context(t, 10*time.Second)
	in.Faults.Next(2, grpckittest.Fault{Code: codes.Unavailable})
	_ = call(ctx, c, "fail")
	fake.Advance(time.Second)
	if code := status.Code(call(ctx, c, "fail")); code != codes.Unavailable {
		t.Fatalf("probe: got %v, want Unavailable from the server", code)
	}
	if err := call(ctx, c, "hi"); !errors.Is(err, breaker.ErrRejected) {
		t.Fatalf("after a failed probe: got %v, want ErrRejected", err)
	}
	if got := in.Faults.Calls(); got != 2 {
		t.Errorf("server calls: got %d, want 2", got)
	}
}

func TestFailureCodes(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		trip bool
	}{
		{codes.Unavailable, true},
		{codes.DeadlineExceeded, true},
		{codes.Internal, false},
		{codes.Unknown, false},
		{codes.DataLoss, false},
		{codes.Canceled, false},
		{codes.InvalidArgument, false},
		{codes.NotFound, false},
		{codes.PermissionDenied, false},
		{codes.ResourceExhausted, false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			b, _ := breaker.New("test", breaker.WithThreshold(2))
			in, c := dial(t, b)
			in.Faults.Always(grpckittest.Fault{Code: tc.code})
			ctx := grpckittest.Context(t, 10*time.Second)
			for range 4 {
				_ = call(ctx, c, "fail")
			}
			want := gobreaker.StateClosed
			if tc.trip {
				want = gobreaker.StateOpen
			}
			if got := b.State(echoMethod); got != want {
				t.Errorf("state after 4 × %v: got %v, want %v", tc.code, got, want)
			}
		})
	}
	t.Run("custom", func(t *testing.T) {
		b, _ := breaker.New("test", breaker.WithThreshold(1), breaker.WithFailureCodes(codes.NotFound))
		in, c := dial(t, b)
		in.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
		in.Faults.Next(1, grpckittest.Fault{Code: codes.NotFound})
		ctx := grpckittest.Context(t, 10*time.Second)
		_ = call(ctx, c, "fail")
		if got := b.State(echoMethod); got != gobreaker.StateClosed {
			t.Errorf("Unavailable with failure codes {NotFound}: got %v, want closed", got)
		}
		_ = call(ctx, c, "fail")
		if got := b.State(echoMethod); got != gobreaker.StateOpen {
			t.Errorf("NotFound with failure codes {NotFound}: got %v, want open", got)
		}
	})
	if _, err := breaker.New("t", breaker.WithFailureCodes(codes.Canceled)); !errors.Is(err, breaker.ErrInvalid) {
		t.Errorf("WithFailureCodes(Canceled): got %v, want ErrInvalid", err)
	}
}

// The caller's own deadline or cancellation, and the application's errors,
// never open the breaker: only the backend's health does.
func TestCallersOwnFailuresDoNotCount(t *testing.T) {
	expired := func(t *testing.T) context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		t.Cleanup(cancel)
		return ctx
	}
	tight := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	cancelled := func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		t.Cleanup(cancel)
		return ctx
	}
	live := func(t *testing.T) context.Context { return grpckittest.Context(t, 10*time.Second) }
	for _, tc := range []struct {
		name     string
		ctx      func(*testing.T) context.Context
		fault    grpckittest.Fault
		wantCode codes.Code
	}{
		{"deadline passed before the call", expired, grpckittest.Fault{}, codes.DeadlineExceeded},
		{"tight deadline on a slow call", tight, grpckittest.Fault{Hang: true}, codes.DeadlineExceeded},
		{"cancelled in flight", cancelled, grpckittest.Fault{Hang: true}, codes.Canceled},
		{"plain Go error from the handler", live, grpckittest.Fault{Code: codes.Unknown}, codes.Unknown},
		{"handler panic", live, grpckittest.Fault{Panic: true}, codes.Internal},
		{"data loss from the handler", live, grpckittest.Fault{Code: codes.DataLoss}, codes.DataLoss},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := breaker.New("test")
			in, c := dial(t, b)
			// A ready connection: the calls below are judged, not excluded
			// for want of one.
			if err := call(grpckittest.Context(t, 10*time.Second), c, "hi"); err != nil {
				t.Fatal(err)
			}
			in.Faults.Always(tc.fault)
			for i := range 2 * breaker.DefaultThreshold {
				if got := status.Code(call(tc.ctx(t), c, "hi")); got != tc.wantCode {
					t.Fatalf("call %d: got %v, want %v", i, got, tc.wantCode)
				}
			}
			in.Faults.Reset()
			if got := b.State(echoMethod); got != gobreaker.StateClosed {
				t.Fatalf("state after %d calls: got %v, want closed", 2*breaker.DefaultThreshold, got)
			}
			if got := b.Counts(echoMethod).TotalFailures; got != 0 {
				t.Errorf("failures counted: got %d, want 0", got)
			}
			if err := call(grpckittest.Context(t, 10*time.Second), c, "hi"); err != nil {
				t.Errorf("next call: got %v, want success", err)
			}
		})
	}
}

// A backend that does not answer within a fair budget opens the breaker
// even though the error is the caller's own deadline; a DeadlineExceeded
// the server returns while the caller waits counts too.
func TestHungBackendOpens(t *testing.T) {
	t.Run("own deadline with a fair budget", func(t *testing.T) {
		b, _ := breaker.New("test", breaker.WithThreshold(2), breaker.WithMinBudget(100*time.Millisecond))
		in, c := dial(t, b)
		in.Faults.Always(grpckittest.Fault{Hang: true})
		for i := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := call(ctx, c, "hang")
			cancel()
			if got := status.Code(err); got != codes.DeadlineExceeded {
				t.Fatalf("call %d: got %v, want DeadlineExceeded", i, got)
			}
		}
		if got := b.State(echoMethod); got != gobreaker.StateOpen {
			t.Errorf("state: got %v, want open", got)
		}
	})
	t.Run("returned by the server", func(t *testing.T) {
		b, _ := breaker.New("test", breaker.WithThreshold(2))
		in, c := dial(t, b)
		in.Faults.Always(grpckittest.Fault{Code: codes.DeadlineExceeded})
		for range 2 {
			_ = call(grpckittest.Context(t, 10*time.Second), c, "fail")
		}
		if got := b.State(echoMethod); got != gobreaker.StateOpen {
			t.Errorf("state: got %v, want open", got)
		}
	})
	if _, err := breaker.New("t", breaker.WithMinBudget(-1)); !errors.Is(err, breaker.ErrInvalid) {
		t.Errorf("WithMinBudget(-1): got %v, want ErrInvalid", err)
	}
}

func TestKeys(t *testing.T) {
	t.Run("per method", func(t *testing.T) {
		b, _ := breaker.New("test", breaker.WithThreshold(1))
		in, c := dial(t, b)
		ctx := grpckittest.Context(t, 10*time.Second)
		in.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
		_ = call(ctx, c, "fail")
		st, err := c.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "hi", Count: 1})
		if err != nil {
			t.Fatalf("stream on another method: got %v, want success", err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatalf("stream Recv: got %v, want a message", err)
		}
	})
	t.Run("per service", func(t *testing.T) {
		b, _ := breaker.New("test", breaker.WithThreshold(1), breaker.WithKey(breaker.ByService))
		in, c := dial(t, b)
		ctx := grpckittest.Context(t, 10*time.Second)
		in.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
		_ = call(ctx, c, "fail")
		if _, err := c.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "hi"}); !errors.Is(err, breaker.ErrRejected) {
			t.Fatalf("stream on the same service: got %v, want ErrRejected", err)
		}
		if got := in.Faults.Calls(); got != 1 {
			t.Errorf("server calls: got %d, want 1", got)
		}
	})
}

func TestOnStateChangeConcurrent(t *testing.T) {
	var mu sync.Mutex
	var changes []string
	b, _ := breaker.New("test", breaker.WithThreshold(5), breaker.WithOnStateChange(func(key string, from, to gobreaker.State) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, from.String()+"→"+to.String())
	}))
	in, c := dial(t, b)
	in.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	ctx := grpckittest.Context(t, 10*time.Second)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = call(ctx, c, "fail")
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || changes[0] != "closed→open" {
		t.Errorf("state changes: got %v, want [closed→open]", changes)
	}
}

func TestThrottle(t *testing.T) {
	var fake clock.Fake
	reg := prometheus.NewRegistry()
	th, err := breaker.NewThrottle("test", breaker.WithClock(fake.Now), breaker.WithRand(func() float64 { return 0.5 }),
		breaker.WithWindow(time.Minute), breaker.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	in, c := dial(t, th)
	ctx := grpckittest.Context(t, 20*time.Second)

	// A healthy backend is never throttled.
	for range 50 {
		if err := call(ctx, c, "hi"); err != nil {
			t.Fatalf("healthy backend: got %v, want success", err)
		}
	}
	// Now it fails every call. With K=2 and 50 accepts, rejection starts
	// once requests - 2·accepts > (requests+1)/2, i.e. requests > 201.
	rejected := 0
	in.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	for i := range 400 {
		err := call(ctx, c, "fail")
		if errors.Is(err, breaker.ErrRejected) {
			if rejected == 0 && i+50 < 201 {
				t.Errorf("first rejection at request %d, want after 201", i+50)
			}
			rejected++
		} else if status.Code(err) != codes.Unavailable {
			t.Fatalf("failing backend: got %v, want Unavailable", err)
		}
	}
	if got, want := in.Faults.Calls(), int64(50+400-rejected); got != want {
		t.Errorf("server calls: got %d, want %d (rejections send nothing)", got, want)
	}
	if rejected < 200 {
		t.Errorf("rejected: got %d, want >= 200", rejected)
	}
	if got := metric(t, reg, "grpckit_breaker_rejected_total", "key", "throttle"); got != float64(rejected) {
		t.Errorf("grpckit_breaker_rejected_total{key=throttle}: got %v, want %d", got, rejected)
	}
	if p := th.RejectProbability(); p <= 0.5 {
		t.Errorf("reject probability: got %v, want > 0.5", p)
	}
	// When the window has passed, the history is forgotten.
	fake.Advance(2 * time.Minute) // the window, rounded up, is 16 × 2^32 ns ≈ 69 s
	in.Faults.Always(grpckittest.Fault{})
	if err := call(ctx, c, "hi"); err != nil {
		t.Errorf("after the window: got %v, want success", err)
	}
}

// metric returns the value of the series of family name whose labels
// include the given name/value pairs.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
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
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// Calls that fail because the connection has nowhere to go (here: a
// resolver with no addresses yet) do not trip the breaker, so calls succeed
// as soon as an endpoint appears instead of after the open timeout.
func TestNoConnectionDoesNotTrip(t *testing.T) {
	b, err := breaker.New("test", breaker.WithThreshold(2), breaker.WithTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	in, addr := backend(t)
	r := manual.NewBuilderWithScheme("nowhere")
	r.InitialState(resolver.State{})
	conn, err := grpc.NewClient("nowhere:///echo", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(r), grpc.WithChainUnaryInterceptor(breaker.UnaryClientInterceptor(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	c := echov1.NewEchoServiceClient(conn)
	for i := range 5 {
		if code := status.Code(call(grpckittest.Context(t, 5*time.Second), c, "hi")); code != codes.Unavailable {
			t.Fatalf("call %d with no endpoints: got %v, want Unavailable", i, code)
		}
	}
	if got := b.State(echoMethod); got != gobreaker.StateClosed {
		t.Fatalf("breaker after calls with no connection: %v, want closed", got)
	}
	r.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: addr}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := call(grpckittest.Context(t, 5*time.Second), c, "hi")
		if err == nil {
			break
		}
		if errors.Is(err, breaker.ErrRejected) || status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("call once an endpoint exists: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A backend that answers with failures still trips it.
	in.Faults.Next(2, grpckittest.Fault{Code: codes.Unavailable})
	for range 2 {
		_ = call(grpckittest.Context(t, 5*time.Second), c, "fail")
	}
	if got := b.State(echoMethod); got != gobreaker.StateOpen {
		t.Fatalf("breaker after 2 failures from a ready backend: %v, want open", got)
	}
}

// The first call of a new connection starts before the connection is ready;
// when it reaches the backend and fails, it counts. (It is judged by
// whether it reached a backend, not by the connection's state at its end,
// which can lag behind the picker the call was sent with.)
func TestFirstCallOfNewConnectionCounts(t *testing.T) {
	for i := range 20 {
		b, err := breaker.New("test", breaker.WithThreshold(1), breaker.WithTimeout(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		in, addr := backend(t)
		in.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithChainUnaryInterceptor(breaker.UnaryClientInterceptor(b)))
		if err != nil {
			t.Fatal(err)
		}
		c := echov1.NewEchoServiceClient(conn)
		if code := status.Code(call(grpckittest.Context(t, 5*time.Second), c, "fail")); code != codes.Unavailable {
			t.Fatalf("round %d: got %v, want the backend's Unavailable", i, code)
		}
		if got := b.State(echoMethod); got != gobreaker.StateOpen {
			t.Fatalf("round %d: breaker after the first call failed on the backend: %v, want open", i, got)
		}
		_ = conn.Close()
	}
}
