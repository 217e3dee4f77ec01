package p2c

import (
	"context"
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
		done := eps[i].Pick(clock.now())
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
