package lb_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/balancer/internal/lb"
	"github.com/grpckit/grpckit/balancer/internal/lbtest"
	gkresolver "github.com/grpckit/grpckit/resolver"
)

// readyPicker exposes the ready set it was built with.
type readyPicker struct{ ready []lb.Ready }

func (p *readyPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.ready[0].SC}, nil
}

func newBalancer(t *testing.T, cc *lbtest.FakeCC) *lb.Balancer {
	t.Helper()
	bb := &lb.Builder{BalancerName: "test", Picker: func(_ *lb.Group, r []lb.Ready) balancer.Picker { return &readyPicker{r} }}
	b := bb.Build(cc, balancer.BuildOptions{}).(*lb.Balancer)
	t.Cleanup(b.Close)
	return b
}

func endpoints(from, to int, weight uint32) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, 0, to-from)
	for i := from; i < to; i++ {
		eps = append(eps, gkresolver.ToGRPC(gkresolver.Endpoint{Addr: fmt.Sprintf("10.0.%d.%d:80", i/250, i%250), Weight: weight}))
	}
	return eps
}

func update(t *testing.T, b *lb.Balancer, subset int, eps []resolver.Endpoint) error {
	t.Helper()
	cfg, err := lb.ParseConfig("test", fmt.Appendf(nil, `{"subsetSize":%d}`, subset))
	if err != nil {
		t.Fatal(err)
	}
	return b.UpdateClientConnState(balancer.ClientConnState{ResolverState: resolver.State{Endpoints: eps}, BalancerConfig: cfg})
}

func readyCount(cc *lbtest.FakeCC) int {
	p, ok := cc.State.Picker.(*readyPicker)
	if !ok {
		return 0
	}
	return len(p.ready)
}

func TestSubsetAndWorkProportionalToChange(t *testing.T) {
	cc := &lbtest.FakeCC{}
	b := newBalancer(t, cc)
	all := endpoints(0, 1000, 0)
	if err := update(t, b, 10, all); err != nil {
		t.Fatal(err)
	}
	cc.Flush()
	if cc.Created != 10 || readyCount(cc) != 10 || cc.State.ConnectivityState != connectivity.Ready {
		t.Fatalf("1000 endpoints, subset 10: got created=%d ready=%d state=%v, want 10, 10, READY", cc.Created, readyCount(cc), cc.State.ConnectivityState)
	}
	subset := map[string]*lb.Endpoint{}
	for _, e := range b.Subset() {
		subset[e.Addr] = e
	}

	t.Run("identical update", func(t *testing.T) {
		created, updates := cc.Created, cc.Updates
		if err := update(t, b, 10, all); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		if cc.Created != created || cc.Updates != updates {
			t.Errorf("got %d SubConns and %d pickers more, want none", cc.Created-created, cc.Updates-updates)
		}
	})

	t.Run("a subset member leaves", func(t *testing.T) {
		gone := b.Subset()[0].Addr
		var rest []resolver.Endpoint
		for _, ep := range all {
			if ep.Addresses[0].Addr != gone {
				rest = append(rest, ep)
			}
		}
		created, shut := cc.Created, cc.ShutDown
		if err := update(t, b, 10, rest); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		if cc.Created-created != 1 || cc.ShutDown-shut != 1 || readyCount(cc) != 10 {
			t.Errorf("got %d created, %d shut down, %d ready, want 1, 1, 10", cc.Created-created, cc.ShutDown-shut, readyCount(cc))
		}
		kept := 0
		for _, e := range b.Subset() {
			if subset[e.Addr] == e {
				kept++
			}
		}
		if kept != 9 {
			t.Errorf("statistics kept for staying members: got %d, want 9", kept)
		}
	})

	t.Run("non-members leave and join", func(t *testing.T) {
		created, shut := cc.Created, cc.ShutDown
		next := append(append([]resolver.Endpoint(nil), all[1:990]...), endpoints(2000, 2010, 0)...)
		members := map[string]bool{}
		for _, e := range b.Subset() {
			members[e.Addr] = true
		}
		if err := update(t, b, 10, next); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		// Only members that left, or newcomers that outrank members, move.
		moved := cc.Created - created
		if moved > 3 || cc.ShutDown-shut != moved {
			t.Errorf("1%% churn: got %d created and %d shut down, want a few and equal", moved, cc.ShutDown-shut)
		}
	})
}

func TestSubsetFollowsWeights(t *testing.T) {
	// Across many clients, an endpoint of weight 4 is in a subset far more
	// often than one of weight 1.
	heavy := endpoints(0, 10, 4)
	light := endpoints(10, 20, 1)
	var inHeavy, inLight int
	for range 200 {
		cc := &lbtest.FakeCC{}
		b := newBalancer(t, cc)
		if err := update(t, b, 5, append(append([]resolver.Endpoint(nil), heavy...), light...)); err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Subset() {
			if e.Weight() == 4 {
				inHeavy++
			} else {
				inLight++
			}
		}
	}
	if inHeavy < 2*inLight {
		t.Errorf("subset places: got weight 4: %d, weight 1: %d, want at least twice as many for weight 4 (about 3 times expected)", inHeavy, inLight)
	}
}

func TestStatesAndErrors(t *testing.T) {
	t.Run("all connections fail", func(t *testing.T) {
		cc := &lbtest.FakeCC{Fail: true}
		b := newBalancer(t, cc)
		if err := update(t, b, 10, endpoints(0, 3, 0)); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		if cc.State.ConnectivityState != connectivity.TransientFailure {
			t.Fatalf("state: got %v, want TRANSIENT_FAILURE", cc.State.ConnectivityState)
		}
		// A plain error: gRPC turns it into Unavailable for fail-fast calls
		// and lets WaitForReady calls wait.
		_, err := cc.State.Picker.Pick(balancer.PickInfo{})
		if _, isStatus := status.FromError(err); err == nil || isStatus || !strings.Contains(err.Error(), "all connections failed") {
			t.Errorf("pick: got %v, want a plain error saying all connections failed", err)
		}
	})
	t.Run("no endpoints", func(t *testing.T) {
		cc := &lbtest.FakeCC{}
		b := newBalancer(t, cc)
		if err := update(t, b, 10, nil); !errors.Is(err, balancer.ErrBadResolverState) {
			t.Errorf("got %v, want ErrBadResolverState", err)
		}
		if cc.State.ConnectivityState != connectivity.TransientFailure {
			t.Errorf("state: got %v, want TRANSIENT_FAILURE", cc.State.ConnectivityState)
		}
		if err := update(t, b, 10, endpoints(0, 1, 0)); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		if cc.State.ConnectivityState != connectivity.Ready {
			t.Errorf("after endpoints arrive: got %v, want READY", cc.State.ConnectivityState)
		}
	})
	t.Run("connecting", func(t *testing.T) {
		cc := &lbtest.FakeCC{}
		b := newBalancer(t, cc)
		if err := update(t, b, 10, endpoints(0, 2, 0)); err != nil {
			t.Fatal(err)
		}
		if _, err := cc.State.Picker.Pick(balancer.PickInfo{}); cc.State.Picker != nil && !errors.Is(err, balancer.ErrNoSubConnAvailable) {
			t.Errorf("pick while connecting: got %v, want ErrNoSubConnAvailable", err)
		}
	})
	t.Run("weight change rebuilds the picker", func(t *testing.T) {
		cc := &lbtest.FakeCC{}
		b := newBalancer(t, cc)
		if err := update(t, b, 10, endpoints(0, 2, 1)); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		updates := cc.Updates
		if err := update(t, b, 10, endpoints(0, 2, 5)); err != nil {
			t.Fatal(err)
		}
		if cc.Updates != updates+1 || cc.State.Picker.(*readyPicker).ready[0].EP.Weight() != 5 {
			t.Errorf("got %d new pickers, want 1 with weight 5", cc.Updates-updates)
		}
	})
	t.Run("addresses without endpoints", func(t *testing.T) {
		cc := &lbtest.FakeCC{}
		b := newBalancer(t, cc)
		err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: resolver.State{Addresses: []resolver.Address{{Addr: "10.1.1.1:80"}, {Addr: "10.1.1.2:80"}}}})
		if err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		if readyCount(cc) != 2 {
			t.Errorf("got %d ready, want 2", readyCount(cc))
		}
	})
}

func TestFailedMemberIsStoodInFor(t *testing.T) {
	cc := &lbtest.FakeCC{Keep: true}
	b := newBalancer(t, cc)
	if err := update(t, b, 5, endpoints(0, 20, 0)); err != nil {
		t.Fatal(err)
	}
	cc.Flush()
	if cc.Created != 5 || readyCount(cc) != 5 {
		t.Fatalf("got created=%d ready=%d, want 5, 5", cc.Created, readyCount(cc))
	}
	failing := cc.SubConns[0]
	failing.SetState(connectivity.TransientFailure)
	cc.Flush()
	if cc.Created != 6 || readyCount(cc) != 5 || failing.Down() {
		t.Fatalf("a member failed: got created=%d ready=%d failing shut down=%v, want 6, 5, false (kept to reconnect)", cc.Created, readyCount(cc), failing.Down())
	}
	failing.SetState(connectivity.Connecting) // sticky failure: nothing moves
	failing.SetState(connectivity.Ready)
	cc.Flush()
	if cc.ShutDown != 1 || readyCount(cc) != 5 || len(b.Subset()) != 5 {
		t.Errorf("the member recovered: got shut down=%d ready=%d subset=%d, want 1, 5, 5 (stand-in released)", cc.ShutDown, readyCount(cc), len(b.Subset()))
	}
}

func TestReorderedAndShrunkUpdates(t *testing.T) {
	cc := &lbtest.FakeCC{}
	b := newBalancer(t, cc)
	eps := endpoints(0, 50, 0)
	if err := update(t, b, 100, eps); err != nil {
		t.Fatal(err)
	}
	cc.Flush()
	reversed := make([]resolver.Endpoint, len(eps))
	for i, ep := range eps {
		reversed[len(eps)-1-i] = ep
	}
	for _, tc := range []struct {
		name                   string
		eps                    []resolver.Endpoint
		created, shut, inReady int
	}{
		{"reversed", reversed, 0, 0, 50},
		{"first ten gone", eps[10:], 0, 10, 40},
		{"back in order", eps, 10, 0, 50},
		{"same again", endpoints(0, 50, 0), 0, 0, 50},
	} {
		created, shut := cc.Created, cc.ShutDown
		if err := update(t, b, 100, tc.eps); err != nil {
			t.Fatal(err)
		}
		cc.Flush()
		if cc.Created-created != tc.created || cc.ShutDown-shut != tc.shut || readyCount(cc) != tc.inReady {
			t.Errorf("%s: got created=%d shut=%d ready=%d, want %d, %d, %d", tc.name, cc.Created-created, cc.ShutDown-shut, readyCount(cc), tc.created, tc.shut, tc.inReady)
		}
		got := map[string]bool{}
		for _, e := range b.Subset() {
			got[e.Addr] = true
		}
		for _, ep := range tc.eps {
			if !got[ep.Addresses[0].Addr] {
				t.Errorf("%s: %s missing from the subset", tc.name, ep.Addresses[0].Addr)
			}
		}
	}
}

func TestReadySetThroughFlaps(t *testing.T) {
	cc := &lbtest.FakeCC{Keep: true}
	b := newBalancer(t, cc)
	if err := update(t, b, 100, endpoints(0, 50, 0)); err != nil {
		t.Fatal(err)
	}
	cc.Flush()
	for round := range 3 {
		for _, sc := range cc.SubConns[:10] {
			sc.SetState(connectivity.Idle)
		}
		if got := readyCount(cc); got != 40 {
			t.Fatalf("round %d: 10 of 50 idle: got %d ready, want 40", round, got)
		}
		for _, sc := range cc.SubConns[:10] {
			sc.SetState(connectivity.Ready)
		}
		p := cc.State.Picker.(*readyPicker)
		seen := map[*lb.Endpoint]bool{}
		for _, r := range p.ready {
			if seen[r.EP] {
				t.Fatalf("round %d: %s twice in the picker", round, r.EP.Addr)
			}
			seen[r.EP] = true
		}
		if len(seen) != 50 {
			t.Fatalf("round %d: got %d ready, want 50", round, len(seen))
		}
	}
}
