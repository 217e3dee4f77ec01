package p2c_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/balancer/internal/lbtest"
	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// call makes n echo calls from workers goroutines and returns the errors.
func call(t *testing.T, c *lbtest.Client, n, workers int) []error {
	t.Helper()
	echo := echov1.NewEchoServiceClient(c)
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

func delta(before, after []int64) ([]int64, int64) {
	d := make([]int64, len(after))
	var total int64
	for i := range after {
		d[i] = after[i] - before[i]
		total += d[i]
	}
	return d, total
}

// TestEvenDistribution: equal endpoints share the calls evenly. Their
// latencies are equal by construction: the balancer's clock stands still, so
// that no endpoint looks slower because the machine ran its calls late (on a
// loaded machine one would, and p2c would rightly avoid it). The calls still
// take a millisecond, so that they overlap and in-flight counts matter.
func TestEvenDistribution(t *testing.T) {
	name := register(lbtest.NewClock())
	bs := lbtest.Start(t, 4)
	for _, b := range bs {
		b.Delay.Store(int64(time.Millisecond))
	}
	c := lbtest.Dial(t, name, "", lbtest.Endpoints(bs))
	c.WaitReady(t, 4)
	call(t, c, 200, 8)
	before := lbtest.Served(bs)
	if errs := call(t, c, 4000, 8); len(errs) > 0 {
		t.Fatalf("got %d errors (first %v), want none", len(errs), errs[0])
	}
	d, total := delta(before, lbtest.Served(bs))
	for i, n := range d {
		share := float64(n) / float64(total)
		if share < 0.22 || share > 0.28 {
			t.Errorf("backend %d: got share %.3f (%v), want 0.25 ± 0.03", i, share, d)
		}
	}
	t.Logf("calls per backend: %v", d)
}

func TestWeightsFavourHeavier(t *testing.T) {
	bs := lbtest.Start(t, 3)
	for _, b := range bs {
		b.Delay.Store(int64(2 * time.Millisecond))
	}
	c := lbtest.Dial(t, p2c.Name, "", lbtest.Endpoints(bs, 1, 2, 3))
	c.WaitReady(t, 3)
	call(t, c, 200, 12)
	before := lbtest.Served(bs)
	if errs := call(t, c, 3000, 12); len(errs) > 0 {
		t.Fatalf("got %d errors (first %v), want none", len(errs), errs[0])
	}
	d, _ := delta(before, lbtest.Served(bs))
	t.Logf("calls per backend with weights 1:2:3: %v", d)
	if !(d[0] < d[1] && d[1] < d[2]) {
		t.Errorf("got calls %v, want increasing with weights 1:2:3", d)
	}
}

// TestSlowEndpointStaysPenalizedAfterJoin: an endpoint that was slow keeps
// its statistics when another endpoint joins, so p2c keeps it out of the
// calls instead of taking it for a new endpoint (which gets the next call,
// and every call until its first one ends).
//
// The latencies are the test's, not the machine's: the backends take their
// Delay on the balancer's clock, and the calls are made one at a time, so
// each call lasts exactly its backend's Delay, 20ms on the slow endpoint and
// 1ms on the others, with nothing else in flight. The slow endpoint then
// loses every draw, however late the machine runs the calls; on real time, a
// loaded machine makes fast calls take tens of milliseconds and the slow
// endpoint wins draws it should lose. Probes, which the slow endpoint would
// get once per probe interval by design, are off.
func TestSlowEndpointStaysPenalizedAfterJoin(t *testing.T) {
	clock := lbtest.NewClock()
	name := register(clock)
	bs := lbtest.Start(t, 4)
	slow := bs[0]
	for _, b := range bs {
		b.Clock.Store(clock)
		b.Delay.Store(int64(time.Millisecond))
	}
	slow.Delay.Store(int64(20 * time.Millisecond))
	c := lbtest.Dial(t, name, `{"probeInterval":"1h"}`, lbtest.Endpoints(bs[:3]))
	c.WaitReady(t, 3)
	ep := c.Endpoint(slow.Addr)
	if ep == nil {
		t.Fatalf("slow endpoint %s not in the balancer", slow.Addr)
	}
	// A new endpoint takes the first call of the first picker that holds it.
	wait.For(t, 10*time.Second, "a call to the slow endpoint", func() bool {
		call(t, c, 10, 1)
		return slow.Served.Load() > 0
	})
	call(t, c, 300, 1)
	if got := time.Duration(ep.Latency()); got < 15*time.Millisecond {
		t.Fatalf("slow endpoint latency before join: got %v, want >= 15ms", got)
	}

	before := lbtest.Served(bs)
	c.R.UpdateState(resolver.State{Endpoints: lbtest.Endpoints(bs)})
	c.WaitReady(t, 4)
	if got := c.Endpoint(slow.Addr); got != ep {
		t.Fatalf("slow endpoint statistics after join: got a new record, want the old one kept")
	}
	if got := time.Duration(ep.Latency()); got < 15*time.Millisecond {
		t.Errorf("slow endpoint latency after join: got %v, want >= 15ms", got)
	}
	wait.For(t, 10*time.Second, "a call to the new endpoint", func() bool {
		call(t, c, 10, 1)
		return bs[3].Served.Load() > 0
	})
	if errs := call(t, c, 400, 1); len(errs) > 0 {
		t.Fatalf("got %d errors (first %v), want none", len(errs), errs[0])
	}
	if d, _ := delta(before, lbtest.Served(bs)); d[0] != 0 {
		t.Errorf("calls to the slow endpoint after join: got %d (%v), want 0", d[0], d)
	}
}

var fakeNames atomic.Int64

// register registers a p2c builder using clock under a fresh name.
func register(clock *lbtest.Clock) string {
	name := fmt.Sprintf("p2c_test_%d", fakeNames.Add(1))
	balancer.Register(p2c.NewBuilder(name, clock.Now))
	return name
}

func TestEjectionAndReadmission(t *testing.T) {
	clock := lbtest.NewClock()
	name := register(clock)
	bs := lbtest.Start(t, 4)
	cfg := `{"ejection":{"consecutiveFailures":3,"baseEjectionTime":"10s","maxEjectionTime":"100s","maxEjectionPercent":25}}`
	c := lbtest.Dial(t, name, cfg, lbtest.Endpoints(bs))
	c.WaitReady(t, 4)
	bad := bs[2]
	bad.Fail.Store(true)
	ep := c.Endpoint(bad.Addr)

	// Failures: the endpoint is ejected after 3 in a row.
	wait.For(t, 10*time.Second, "ejection", func() bool {
		call(t, c, 20, 2)
		return ep.IsEjected()
	})
	if got := ep.Ejections(); got != 1 {
		t.Errorf("ejections: got %d, want 1", got)
	}
	before := bad.Served.Load()
	if errs := call(t, c, 200, 4); len(errs) > 0 {
		t.Errorf("while ejected: got %d errors (first %v), want none", len(errs), errs[0])
	}
	if got := bad.Served.Load() - before; got != 0 {
		t.Errorf("calls to the ejected endpoint: got %d, want 0", got)
	}

	// Recovered and the ejection time over: readmitted and served again.
	bad.Fail.Store(false)
	clock.Advance(11 * time.Second)
	before = bad.Served.Load()
	if errs := call(t, c, 400, 4); len(errs) > 0 {
		t.Errorf("after readmission: got %d errors (first %v), want none", len(errs), errs[0])
	}
	if got := bad.Served.Load() - before; got < 40 {
		t.Errorf("calls to the readmitted endpoint: got %d, want >= 40 of 400", got)
	}
	if ep.IsEjected() {
		t.Errorf("after recovery: got ejected, want admitted")
	}
}

// TestEjectionIntervalGrowsAndProbationReejects: each ejection lasts longer
// than the one before, up to the maximum, and an endpoint readmitted on
// probation is ejected again by its first failure.
//
// Each round waits for the ejection count to grow, not for IsEjected: an
// ejection that is over stays recorded until a pick draws the endpoint and
// readmits it, so IsEjected can still show the previous round's ejection.
func TestEjectionIntervalGrowsAndProbationReejects(t *testing.T) {
	clock := lbtest.NewClock()
	name := register(clock)
	bs := lbtest.Start(t, 4)
	cfg := `{"ejection":{"consecutiveFailures":2,"baseEjectionTime":"10s","maxEjectionTime":"25s","maxEjectionPercent":25}}`
	c := lbtest.Dial(t, name, cfg, lbtest.Endpoints(bs))
	c.WaitReady(t, 4)
	bad := bs[1]
	bad.Fail.Store(true)
	ep := c.Endpoint(bad.Addr)
	for round, ejection := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second} {
		want := int64(round + 1)
		wait.For(t, 10*time.Second, fmt.Sprintf("round %d: ejection %d", round, want), func() bool {
			call(t, c, 10, 2)
			return ep.Ejections() >= want
		})
		if got := ep.Ejections(); got != want {
			t.Fatalf("round %d: ejections: got %d, want %d", round, got, want)
		}
		// Not yet over: still out, and no call reaches it.
		early := ejection - time.Second
		clock.Advance(early)
		served := bad.Served.Load()
		call(t, c, 50, 2)
		if !ep.IsEjected() {
			t.Fatalf("round %d: %v into a %v ejection: got admitted, want ejected", round, early, ejection)
		}
		if got := ep.Ejections(); got != want {
			t.Fatalf("round %d: %v into a %v ejection: got %d ejections, want %d", round, early, ejection, got, want)
		}
		if got := bad.Served.Load() - served; got != 0 {
			t.Fatalf("round %d: %v into a %v ejection: got %d calls to the endpoint, want 0", round, early, ejection, got)
		}
		// Over: readmitted on probation, and the first failure ejects again.
		clock.Advance(2 * time.Second)
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	bs := lbtest.Start(t, 4)
	for _, b := range bs {
		b.Fail.Store(true)
	}
	cfg := `{"ejection":{"consecutiveFailures":1,"maxEjectionPercent":50}}`
	c := lbtest.Dial(t, p2c.Name, cfg, lbtest.Endpoints(bs))
	c.WaitReady(t, 4)
	errs := call(t, c, 200, 4)
	if len(errs) != 200 {
		t.Fatalf("got %d errors, want 200", len(errs))
	}
	if code := status.Code(errs[0]); code != codes.Unavailable {
		t.Errorf("error code: got %v, want Unavailable", code)
	}
	in, _ := c.Balancer()
	if in.Ejected != 2 {
		t.Errorf("ejected endpoints: got %d, want 2 (50%% of 4)", in.Ejected)
	}
}

func TestCallerCancellationDoesNotCount(t *testing.T) {
	bs := lbtest.Start(t, 2)
	bs[0].Delay.Store(int64(time.Hour))
	cfg := `{"ejection":{"consecutiveFailures":1,"maxEjectionPercent":50}}`
	c := lbtest.Dial(t, p2c.Name, cfg, lbtest.Endpoints(bs[:1]))
	c.WaitReady(t, 1)
	echo := echov1.NewEchoServiceClient(c)
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		served := bs[0].Served.Load()
		done := make(chan error, 1)
		go func() {
			_, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			done <- err
		}()
		wait.For(t, 5*time.Second, "call to arrive", func() bool { return bs[0].Served.Load() > served })
		cancel()
		if err := <-done; status.Code(err) != codes.Canceled {
			t.Fatalf("got %v, want Canceled", err)
		}
	}
	ep := c.Endpoint(bs[0].Addr)
	if calls, failures := ep.Calls(); calls != 0 || failures != 0 {
		t.Errorf("canceled calls counted: got calls=%d failures=%d, want 0, 0", calls, failures)
	}
	if ep.IsEjected() || ep.SuccessRate() != 1 {
		t.Errorf("after canceled calls: got ejected=%v success=%v, want false, 1", ep.IsEjected(), ep.SuccessRate())
	}
	if got := ep.InFlight(); got != 0 {
		t.Errorf("in flight: got %d, want 0", got)
	}
}

func TestParseConfigThroughServiceConfig(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		ok        bool
	}{
		{"empty", `{}`, true},
		{"full", `{"subsetSize":10,"decay":"5s","probeInterval":"500ms","ejection":{"disabled":true}}`, true},
		{"negative subset", `{"subsetSize":0}`, false},
		{"bad decay", `{"decay":"soon"}`, false},
		{"percent", `{"ejection":{"maxEjectionPercent":101}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := balancer.Get(p2c.Name).(balancer.ConfigParser)
			_, err := p.ParseConfig([]byte(tc.cfg))
			if (err == nil) != tc.ok {
				t.Errorf("ParseConfig(%s): got err %v, want ok=%v", tc.cfg, err, tc.ok)
			}
		})
	}
}

func TestNoEndpointsFailsFast(t *testing.T) {
	c := lbtest.Dial(t, p2c.Name, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := echov1.NewEchoServiceClient(c).Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("got %v, want Unavailable", err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("call waited for the deadline, want a prompt failure")
	}
}

func TestInvalidConfigFailsClientConstruction(t *testing.T) {
	_, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure(), client.WithBalancer(p2c.Name),
		client.WithDialOptions(grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"p2c":{"ejection":{"maxEjectionPercent":200}}}]}`)))
	if err == nil || !strings.Contains(err.Error(), "maxEjectionPercent") {
		t.Errorf("got %v, want an error naming maxEjectionPercent", err)
	}
}
