package resolver_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/grpckit/grpckit/resolver"
)

// nopCC is a ClientConn that accepts every state.
type nopCC struct {
	grpcresolver.ClientConn
	n int
}

func (c *nopCC) UpdateState(s grpcresolver.State) error { c.n = len(s.Endpoints); return nil }
func (c *nopCC) ReportError(error)                      {}
func (c *nopCC) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

func benchUpdater(b *testing.B, n int) (resolver.Updater, *nopCC, map[string]resolver.Endpoint) {
	src := newFakeSource()
	bl, err := resolver.NewBuilder("fake", src, resolver.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	u0, _ := url.Parse("fake:///svc")
	cc := &nopCC{}
	r, err := bl.Build(grpcresolver.Target{URL: *u0}, cc, grpcresolver.BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	u := src.updater(&testing.T{})
	m := make(map[string]resolver.Endpoint, n)
	for i := range n {
		m[fmt.Sprint(i)] = resolver.Endpoint{Addr: fmt.Sprintf("10.%d.%d.%d:80", i>>16, (i>>8)&255, i&255)}
	}
	u.Replace(m)
	return u, cc, m
}

// BenchmarkApplyOne is one changed endpoint among n, from Apply to the state
// handed to gRPC: the work is the change plus one copy of the list.
func BenchmarkApplyOne(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			u, cc, m := benchUpdater(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				k := fmt.Sprint(i % n)
				e := m[k]
				e.Weight = uint32(2 + (i/n)%2)
				u.Apply(resolver.Change{Key: k, Endpoint: e})
			}
			if cc.n != n {
				b.Fatalf("state has %d endpoints, want %d", cc.n, n)
			}
		})
	}
}

// BenchmarkReplaceOne is the same change reported as a complete set (what
// Consul and DNS sources do): the diff is proportional to the set.
func BenchmarkReplaceOne(b *testing.B) {
	u, cc, m := benchUpdater(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := fmt.Sprint(i % 10000)
		e := m[k]
		e.Weight = uint32(2 + (i/10000)%2)
		m[k] = e
		u.Replace(m)
	}
	if cc.n != 10000 {
		b.Fatalf("state has %d endpoints, want 10000", cc.n)
	}
}

// BenchmarkIdentical is a Replace that changes nothing: no state is pushed.
func BenchmarkIdentical(b *testing.B) {
	u, _, m := benchUpdater(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		u.Replace(m)
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for range b.N {
		_ = time.Now()
	}
}
