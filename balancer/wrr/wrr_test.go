package wrr

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/balancer/internal/lb"
	"github.com/grpckit/grpckit/balancer/internal/lbtest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func call(t *testing.T, c *lbtest.Client, n, workers int) int {
	t.Helper()
	echo := echov1.NewEchoServiceClient(c)
	var (
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
					failed.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

func TestShares(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint32
		workers int
	}{
		{"equal", []uint32{0, 0, 0, 0}, 4},
		{"1:2:3", []uint32{1, 2, 3}, 4},
		{"10:20:30 sequential", []uint32{10, 20, 30}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := lbtest.Start(t, len(tc.weights))
			c := lbtest.Dial(t, Name, "", lbtest.Endpoints(bs, tc.weights...))
			c.WaitReady(t, len(bs))
			// An endpoint is READY a moment before the picker with it is
			// published: the share counts from when every backend has
			// served a call, so the picker has them all.
			wait.For(t, 10*time.Second, "every backend served", func() bool {
				if failed := call(t, c, 4*len(bs), 1); failed != 0 {
					t.Fatalf("warm-up: got %d failed calls, want 0", failed)
				}
				return !slices.Contains(lbtest.Served(bs), 0)
			})
			before := lbtest.Served(bs)
			const n = 3000
			if failed := call(t, c, n, tc.workers); failed != 0 {
				t.Fatalf("got %d failed calls, want 0", failed)
			}
			var sum float64
			for _, w := range tc.weights {
				sum += float64(max(w, 1))
			}
			after := lbtest.Served(bs)
			for i, w := range tc.weights {
				got := float64(after[i]-before[i]) / n
				want := float64(max(w, 1)) / sum
				if math.Abs(got-want) > 0.02 {
					t.Errorf("backend %d (weight %d): got share %.3f, want %.3f ± 0.02", i, w, got, want)
				}
			}
		})
	}
}

func TestWeightChangeFromResolver(t *testing.T) {
	bs := lbtest.Start(t, 2)
	c := lbtest.Dial(t, Name, "", lbtest.Endpoints(bs, 1, 1))
	c.WaitReady(t, 2)
	c.R.UpdateState(resolver.State{Endpoints: lbtest.Endpoints(bs, 1, 3)})
	wait.For(t, 5*time.Second, "weight 3", func() bool {
		e := c.Endpoint(bs[1].Addr)
		return e != nil && e.Weight() == 3
	})
	before := lbtest.Served(bs)
	const n = 2000
	if failed := call(t, c, n, 2); failed != 0 {
		t.Fatalf("got %d failed calls, want 0", failed)
	}
	got := float64(bs[1].Served.Load()-before[1]) / n
	if math.Abs(got-0.75) > 0.02 {
		t.Errorf("share of weight 3 of 1+3: got %.3f, want 0.75 ± 0.02", got)
	}
}

func TestFailingBackendEjectedAndReadmitted(t *testing.T) {
	clock := lbtest.NewClock()
	name := "wrr_test_clock"
	balancer.Register(newBuilder(name, clock.Now))
	bs := lbtest.Start(t, 4)
	cfg := `{"ejection":{"consecutiveFailures":3,"baseEjectionTime":"30s","maxEjectionPercent":25}}`
	c := lbtest.Dial(t, name, cfg, lbtest.Endpoints(bs))
	c.WaitReady(t, 4)
	bad := bs[0]
	bad.Fail.Store(true)
	ep := c.Endpoint(bad.Addr)
	wait.For(t, 10*time.Second, "ejection", func() bool {
		call(t, c, 8, 1)
		return ep.IsEjected()
	})
	before := bad.Served.Load()
	if failed := call(t, c, 400, 2); failed != 0 {
		t.Errorf("while ejected: got %d failed calls, want 0", failed)
	}
	if got := bad.Served.Load() - before; got != 0 {
		t.Errorf("calls to the ejected backend: got %d, want 0", got)
	}
	bad.Fail.Store(false)
	clock.Advance(31 * time.Second)
	before = bad.Served.Load()
	if failed := call(t, c, 400, 2); failed != 0 {
		t.Errorf("after readmission: got %d failed calls, want 0", failed)
	}
	if got := bad.Served.Load() - before; got < 90 {
		t.Errorf("calls to the readmitted backend: got %d, want about 100 of 400", got)
	}
}

// fakeReady returns ready endpoints with the given weights and no SubConns.
func fakeReady(weights ...uint32) []lb.Ready {
	g := lb.NewGroup(lb.DefaultConfig(), nil)
	rs := make([]lb.Ready, len(weights))
	for i, w := range weights {
		rs[i] = lb.Ready{EP: lb.NewEndpoint(g, fmt.Sprint(i), w)}
	}
	return rs
}

func TestScheduleIsSmooth(t *testing.T) {
	for _, tc := range []struct {
		weights []uint32
		maxRun  int // longest run of one endpoint in the cycle
	}{
		{[]uint32{5, 1, 1}, 2},
		{[]uint32{1, 2, 3}, 1},
		{[]uint32{1, 1, 1, 1}, 1},
		{[]uint32{100, 200, 300}, 1},
		{[]uint32{4294967295, 1}, maxSchedule},
		{manyWeights(300), 2},
		{manyWeights(5000), 2},
	} {
		name := fmt.Sprint(tc.weights)
		if len(name) > 40 {
			name = fmt.Sprintf("%d endpoints", len(tc.weights))
		}
		t.Run(name, func(t *testing.T) {
			p := newPicker(nil, fakeReady(tc.weights...)).(*picker)
			p.schedule()
			counts := make([]int, len(tc.weights))
			run, longest := 0, 0
			for i, e := range p.order {
				counts[e]++
				if i > 0 && p.order[i-1] == e {
					run++
				} else {
					run = 1
				}
				longest = max(longest, run)
			}
			if longest > tc.maxRun {
				t.Errorf("longest run: got %d, want <= %d (order %v)", longest, tc.maxRun, p.order)
			}
			if limit := max(maxSchedule, 4*len(tc.weights)); len(p.order) > limit {
				t.Errorf("schedule length: got %d, want <= %d", len(p.order), limit)
			}
			for i, c := range counts {
				if tc.weights[i] <= 3 && len(tc.weights) > 2 && c != int(tc.weights[i]) {
					t.Errorf("endpoint %d: got %d picks per cycle, want its weight %d", i, c, tc.weights[i])
				}
			}
			if tc.maxRun == 1 {
				g := 0
				for _, c := range counts {
					g = gcdInt(g, c)
				}
				for i, c := range counts {
					if w := tc.weights[i]; uint32(c/g) != w/(tc.weights[0]/uint32(counts[0]/g)) {
						t.Errorf("endpoint %d: got %d picks per cycle, want proportional to weight %d (%v)", i, c, w, counts)
					}
				}
			}
		})
	}
}

func gcdInt(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// manyWeights returns n weights cycling through 1, 2, 3.
func manyWeights(n int) []uint32 {
	ws := make([]uint32, n)
	for i := range ws {
		ws[i] = uint32(i%3 + 1)
	}
	return ws
}
