package p2c

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/balancer/internal/lb"
)

// fakeClock is a manual clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// pickerWith returns a picker over endpoints whose first calls took the given
// latencies, on clock.
func pickerWith(t *testing.T, clock *fakeClock, latencies ...time.Duration) (*picker, []*lb.Endpoint) {
	t.Helper()
	cfg, err := lb.ParseConfig(Name, []byte(`{"probeInterval":"1s"}`))
	if err != nil {
		t.Fatal(err)
	}
	g := lb.NewGroup(cfg, clock.now)
	rs := make([]lb.Ready, len(latencies))
	eps := make([]*lb.Endpoint, len(latencies))
	for i, l := range latencies {
		eps[i] = lb.NewEndpoint(g, string(rune('a'+i)), 1)
		rs[i] = lb.Ready{EP: eps[i]}
		done := eps[i].Pick(clock.now(), nil)
		clock.advance(l)
		done(balancer.DoneInfo{})
	}
	return newPicker(g, rs).(*picker), eps
}

// picks makes n picks, each done at once, and counts them per endpoint.
func picks(t *testing.T, p *picker, eps []*lb.Endpoint, n int) []int {
	t.Helper()
	counts := make([]int, len(eps))
	info := balancer.PickInfo{Ctx: context.Background()}
	for range n {
		r, err := p.Pick(info)
		if err != nil {
			t.Fatal(err)
		}
		r.Done(balancer.DoneInfo{})
	}
	for i, e := range eps {
		calls, _ := e.Calls()
		counts[i] = int(calls)
	}
	return counts
}

func TestSlowEndpointProbedOncePerInterval(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(int64(time.Hour))
	p, eps := pickerWith(t, clock, time.Millisecond, time.Millisecond, 50*time.Millisecond)
	before := picks(t, p, eps, 0)[2]
	if got := picks(t, p, eps, 1000)[2] - before; got != 0 {
		t.Fatalf("slow endpoint picks within the probe interval: got %d, want 0", got)
	}
	for round := 1; round <= 3; round++ {
		clock.advance(1100 * time.Millisecond)
		before := picks(t, p, eps, 0)[2]
		if got := picks(t, p, eps, 1000)[2] - before; got != 1 {
			t.Errorf("round %d: slow endpoint picks after the probe interval: got %d, want exactly 1 probe", round, got)
		}
	}
}

func TestInFlightSpreadsEqualEndpoints(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(int64(time.Hour))
	p, eps := pickerWith(t, clock, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond)
	// 400 calls held open at once: (in flight + 1) evens them out.
	info := balancer.PickInfo{Ctx: context.Background()}
	var dones []func(balancer.DoneInfo)
	for range 400 {
		r, _ := p.Pick(info)
		dones = append(dones, r.Done)
	}
	for i, e := range eps {
		if got := e.InFlight(); got < 90 || got > 110 {
			t.Errorf("endpoint %d: got %d in flight, want 100 ± 10", i, got)
		}
	}
	for _, d := range dones {
		d(balancer.DoneInfo{})
	}
}

// TestNeverPickedEndpointTakesNextPick: an endpoint that joins the ready set
// without ever having been picked takes the next call, whatever the draw;
// its first pick is claimed once, even by concurrent pickers; a picker
// rebuilt after that does not single it out again.
func TestNeverPickedEndpointTakesNextPick(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(int64(time.Hour))
	p, _ := pickerWith(t, clock, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond)
	info := balancer.PickInfo{Ctx: context.Background()}
	// Without the rule a draw includes the new endpoint 1 time in 4.
	for trial := range 200 {
		fresh := lb.NewEndpoint(p.g, "fresh", 1)
		ready := append(append([]lb.Ready{}, p.ready...), lb.Ready{EP: fresh})
		np := newPicker(p.g, ready).(*picker)
		r, err := np.Pick(info)
		if err != nil {
			t.Fatal(err)
		}
		r.Done(balancer.DoneInfo{})
		if calls, _ := fresh.Calls(); calls != 1 {
			t.Fatalf("trial %d: the next pick went elsewhere, want the never-picked endpoint", trial)
		}
		if np = newPicker(p.g, ready).(*picker); len(np.fresh) != 0 {
			t.Fatalf("rebuilt picker lists %d never-picked endpoints, want 0", len(np.fresh))
		}
	}

	fresh := lb.NewEndpoint(p.g, "fresh", 1)
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if fresh.ClaimFirst() {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent callers claimed the first pick, want 1", wins.Load())
	}
}
