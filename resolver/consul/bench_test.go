package consul

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/consultest"
	"github.com/grpckit/grpckit/resolver"
)

// notifier is an Updater that signals each Replace with its size.
type notifier struct{ sizes chan int }

func (n *notifier) Replace(m map[string]resolver.Endpoint) { n.sizes <- len(m) }
func (*notifier) Apply(...resolver.Change)                 {}
func (*notifier) Invalid(string, error)                    {}
func (*notifier) ReportError(error)                        {}
func (*notifier) ResolveNow() <-chan struct{}              { return nil }

// BenchmarkRegisterToUpdate measures, on the in-process agent, the time
// from a registration and a deregistration (the agent's own PUT latencies,
// measured in the same run as "put-only") to the watching source's updates
// carrying them.
func BenchmarkRegisterToUpdate(b *testing.B) {
	s := consultest.Start(b)
	c := s.Client(b)
	register := func(i int) {
		if err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: "i" + strconv.Itoa(i), Name: "bench", Address: "127.0.0.1", Port: 1 + i%60000,
			Check: &api.AgentServiceCheck{TTL: "1h", Status: api.HealthPassing},
		}); err != nil {
			b.Fatal(err)
		}
	}
	deregister := func(i int) {
		if err := c.Agent().ServiceDeregister("i" + strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
	// Each op registers an instance and deregisters it: two changes, the
	// set stays small.
	b.Run("put-only", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			register(1_000_000 + i)
			deregister(1_000_000 + i)
		}
	})
	b.Run("put-to-update", func(b *testing.B) {
		src := &source{health: c.Health(), cfg: builderConfig{q: query{passingOnly: true}, wait: time.Minute}}
		n := &notifier{sizes: make(chan int, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = src.Watch(ctx, resolver.Target{Service: "bench"}, n)
		}()
		defer func() { cancel(); <-done }()
		for <-n.sizes != 0 {
		}
		for i := 0; b.Loop(); i++ {
			register(i)
			for <-n.sizes != 1 {
			}
			deregister(i)
			for <-n.sizes != 0 {
			}
		}
	})
}

// BenchmarkEndpoints converts a 1000-instance answer, beside time.Now.
func BenchmarkEndpoints(b *testing.B) {
	entries := make([]*api.ServiceEntry, 1000)
	for i := range entries {
		entries[i] = &api.ServiceEntry{
			Node:    &api.Node{Node: "n"},
			Service: &api.AgentService{ID: fmt.Sprint(i), Address: "10.0.0.1", Port: 1 + i, Weights: api.AgentWeights{Passing: 1}, Tags: []string{"a"}, Meta: map[string]string{"zone": "z"}},
			Checks:  api.HealthChecks{{Status: api.HealthPassing}},
		}
	}
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			_ = time.Now()
		}
	})
	b.Run("1000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = endpoints(entries, true)
		}
	})
}
