package lb_test

import (
	"errors"
	"testing"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/balancer/internal/lb"
	"github.com/grpckit/grpckit/balancer/internal/lbtest"
)

func TestParsePoolConfig(t *testing.T) {
	cfg, err := lb.ParseConfig("test", []byte(`{"pool":{"conns":2,"maxConns":4,"streams":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (lb.PoolConfig{Conns: 2, MaxConns: 4, Streams: 10}); cfg.Pool != want {
		t.Errorf("pool = %+v, want %+v", cfg.Pool, want)
	}
	cfg, err = lb.ParseConfig("test", []byte(`{"pool":{"conns":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (lb.PoolConfig{Conns: 3, MaxConns: 3, Streams: lb.DefaultPoolStreams}); cfg.Pool != want {
		t.Errorf("pool = %+v, want %+v", cfg.Pool, want)
	}
	if cfg := lb.DefaultConfig(); cfg.Pool.Conns != 1 || cfg.Pool.MaxConns != 1 {
		t.Errorf("default pool = %+v, want one connection", cfg.Pool)
	}
	for _, js := range []string{
		`{"pool":{"conns":0}}`, `{"pool":{"conns":65}}`, `{"pool":{"conns":2,"maxConns":1}}`,
		`{"pool":{"maxConns":65}}`, `{"pool":{"streams":0}}`, `{"pool":{"conns":-1}}`,
	} {
		if _, err := lb.ParseConfig("test", []byte(js)); !errors.Is(err, lb.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", js, err)
		}
	}
}

func poolUpdate(t *testing.T, b *lb.Balancer, js string, eps []resolver.Endpoint) {
	t.Helper()
	cfg, err := lb.ParseConfig("test", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.UpdateClientConnState(balancer.ClientConnState{ResolverState: resolver.State{Endpoints: eps}, BalancerConfig: cfg}); err != nil {
		t.Fatal(err)
	}
}

func ready(t *testing.T, cc *lbtest.FakeCC) []lb.Ready {
	t.Helper()
	p, ok := cc.State.Picker.(*readyPicker)
	if !ok {
		t.Fatalf("picker %T, want a ready picker", cc.State.Picker)
	}
	return p.ready
}

// An endpoint is ready while one of its connections is; the endpoint, not
// the connection, is what the picker sees; leaving shuts all of them down.
func TestPoolConnectionsPerEndpoint(t *testing.T) {
	cc := &lbtest.FakeCC{Keep: true}
	b := newBalancer(t, cc)
	poolUpdate(t, b, `{"pool":{"conns":2}}`, endpoints(0, 3, 1))
	cc.Flush()
	if cc.Created != 6 {
		t.Fatalf("created %d SubConns, want 2 for each of 3 endpoints", cc.Created)
	}
	rs := ready(t, cc)
	if len(rs) != 3 {
		t.Fatalf("%d ready endpoints, want 3", len(rs))
	}
	for _, r := range rs {
		if r.Pool == nil || len(r.Pool.Ready()) != 2 || r.EP.Conns() != 2 {
			t.Fatalf("%s: pool %v, want two ready connections", r.EP.Addr, r.Pool)
		}
	}
	// Calls spread over an endpoint's connections; its statistics count
	// them all.
	r := rs[0]
	var dones []func(balancer.DoneInfo)
	seen := map[balancer.SubConn]int{}
	for range 4 {
		res, err := r.Pick(1, nil)
		if err != nil {
			t.Fatal(err)
		}
		seen[res.SubConn]++
		dones = append(dones, res.Done)
	}
	if len(seen) != 2 {
		t.Errorf("4 calls went to %d connections, want 2 each: %v", len(seen), seen)
	}
	if got := r.EP.InFlight(); got != 4 {
		t.Errorf("endpoint in flight = %d, want 4", got)
	}
	for _, c := range r.Pool.Ready() {
		if c.InFlight() != 2 {
			t.Errorf("connection in flight = %d, want 2", c.InFlight())
		}
	}
	for _, d := range dones {
		d(balancer.DoneInfo{})
	}
	for _, c := range r.Pool.Ready() {
		if c.InFlight() != 0 {
			t.Errorf("after the calls: connection in flight = %d, want 0", c.InFlight())
		}
	}

	// One connection of the first endpoint fails: the endpoint stays.
	first := cc.SubConns[:2]
	first[0].SetState(connectivity.TransientFailure)
	if n := len(ready(t, cc)); n != 3 {
		t.Errorf("one connection of an endpoint failed: %d ready endpoints, want 3", n)
	}
	if got := len(r.Pool.Ready()); got != 1 {
		t.Errorf("pool: %d ready connections, want 1", got)
	}
	first[1].SetState(connectivity.TransientFailure)
	if n := len(ready(t, cc)); n != 2 {
		t.Errorf("both connections failed: %d ready endpoints, want 2", n)
	}
	// The endpoint leaves: its connections are shut down.
	poolUpdate(t, b, `{"pool":{"conns":2}}`, endpoints(1, 3, 1))
	if !first[0].Down() || !first[1].Down() {
		t.Error("connections of a removed endpoint not shut down")
	}
}

// A pick that finds the pool's connections near their stream limit adds a
// connection; a call finding them full waits for it (ErrNoSubConnAvailable,
// until the next picker) instead of queueing.
func TestPoolGrows(t *testing.T) {
	cc := &lbtest.FakeCC{Keep: true}
	b := newBalancer(t, cc)
	poolUpdate(t, b, `{"pool":{"conns":1,"maxConns":2,"streams":2}}`, endpoints(0, 1, 1))
	cc.Flush()
	r := ready(t, cc)[0]
	if _, err := r.Pick(1, nil); err != nil {
		t.Fatal(err)
	}
	if cc.Created != 1 {
		t.Fatalf("one call of two streams: %d SubConns, want 1", cc.Created)
	}
	if _, err := r.Pick(1, nil); err != nil {
		t.Fatal(err)
	}
	if cc.Created != 2 {
		t.Fatalf("second call: %d SubConns, want 2 (the pool grows)", cc.Created)
	}
	if _, err := r.Pick(1, nil); !errors.Is(err, balancer.ErrNoSubConnAvailable) {
		t.Fatalf("third call while the new connection connects: %v, want ErrNoSubConnAvailable", err)
	}
	updates := cc.Updates
	cc.Flush()
	if cc.Updates == updates {
		t.Fatal("new connection ready: no new picker for the waiting calls")
	}
	res, err := ready(t, cc)[0].Pick(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.SubConn != cc.SubConns[1] {
		t.Error("call after growing did not go to the new connection")
	}
	// At its maximum the pool sends calls to the least busy connection.
	for range 3 {
		if _, err := r.Pick(1, nil); err != nil {
			t.Fatalf("pool at its maximum: %v, want the call sent", err)
		}
	}
	if cc.Created != 2 {
		t.Errorf("%d SubConns, want the maximum, 2", cc.Created)
	}
}

// A connection added to grow the pool that fails wakes the waiting calls.
func TestPoolGrowthFails(t *testing.T) {
	cc := &lbtest.FakeCC{Keep: true}
	b := newBalancer(t, cc)
	poolUpdate(t, b, `{"pool":{"conns":1,"maxConns":2,"streams":1}}`, endpoints(0, 1, 1))
	cc.Flush()
	r := ready(t, cc)[0]
	if _, err := r.Pick(1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pick(1, nil); !errors.Is(err, balancer.ErrNoSubConnAvailable) {
		t.Fatalf("full connection, pool growing: %v, want ErrNoSubConnAvailable", err)
	}
	updates := cc.Updates
	cc.SubConns[1].SetState(connectivity.TransientFailure)
	if cc.Updates == updates {
		t.Fatal("growth failed: no new picker for the waiting calls")
	}
	if _, err := ready(t, cc)[0].Pick(1, nil); err != nil {
		t.Fatalf("after the failed growth: %v, want the call sent to the busy connection", err)
	}
}
