package consul

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/internal/consultest"
	"github.com/grpckit/grpckit/internal/wait"
	"github.com/grpckit/grpckit/resolver"
)

// recorder is a resolver.Updater that records what a source reports.
type recorder struct {
	mu       sync.Mutex
	replaces []map[string]resolver.Endpoint
	errs     []error
	now      chan struct{}
}

func (r *recorder) Replace(m map[string]resolver.Endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replaces = append(r.replaces, m)
}
func (r *recorder) Apply(...resolver.Change)    {}
func (r *recorder) Invalid(string, error)       {}
func (r *recorder) ResolveNow() <-chan struct{} { return r.now }
func (r *recorder) ReportError(err error)       { r.mu.Lock(); r.errs = append(r.errs, err); r.mu.Unlock() }
func (r *recorder) counts() (replaces, errs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.replaces), len(r.errs)
}
func (r *recorder) last() map[string]resolver.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.replaces) == 0 {
		return nil
	}
	return r.replaces[len(r.replaces)-1]
}

// indexEnv registers one instance on the agent (fake or real) and watches
// it through a proxy.
type indexEnv struct {
	proxy *consultest.Proxy
	rec   *recorder
	svc   string
}

func startIndexEnv(t *testing.T, cfg builderConfig, rewrite func(uint64) uint64) *indexEnv {
	t.Helper()
	a := consultest.StartAgent(t)
	direct := a.Client(t)
	svc := fmt.Sprintf("grpckit-index-%06d", rand.IntN(1e6))
	if err := direct.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: svc, Name: svc, Address: "127.0.0.1", Port: 9,
		Check: &api.AgentServiceCheck{TTL: "10m", Status: api.HealthPassing},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Agent().ServiceDeregister(svc) })
	p := consultest.StartProxy(t, a.Addr)
	p.SetIndexRewrite(rewrite)
	src := &source{health: consultest.NewClient(t, p.Addr()).Health(), cfg: cfg}
	rec := &recorder{now: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Watch(ctx, resolver.Target{Scheme: Scheme, Service: svc}, rec)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &indexEnv{proxy: p, rec: rec, svc: svc}
}

func testConfig() builderConfig {
	return builderConfig{
		q:           query{passingOnly: true},
		wait:        200 * time.Millisecond,
		minInterval: 100 * time.Millisecond,
		backoff:     resolver.Backoff{Min: 20 * time.Millisecond, Max: 160 * time.Millisecond},
	}
}

func healthReqs(p *consultest.Proxy) []consultest.ProxyRequest {
	var out []consultest.ProxyRequest
	for _, r := range p.Requests() {
		if len(r.Path) > len("/v1/health/service/") && r.Path[:len("/v1/health/service/")] == "/v1/health/service/" {
			out = append(out, r)
		}
	}
	return out
}

// TestIndexResetWhenItGoesBackwards: an index lower than the last one makes
// the next query a non-blocking one, with no index.
func TestIndexResetWhenItGoesBackwards(t *testing.T) {
	e := startIndexEnv(t, testConfig(), nil)
	const high = 1 << 40
	e.proxy.SetIndexRewrite(func(n uint64) uint64 { return n + high })
	wait.For(t, 10*time.Second, "a query blocking at the high index", func() bool {
		for _, r := range healthReqs(e.proxy) {
			if n, _ := strconv.ParseUint(r.Index, 10, 64); n > high {
				return true
			}
		}
		return false
	})
	e.proxy.SetIndexRewrite(nil) // the index drops back by 2^40
	mark := len(healthReqs(e.proxy))
	wait.For(t, 10*time.Second, "a query without index after the drop", func() bool {
		reqs := healthReqs(e.proxy)
		for _, r := range reqs[mark:] {
			if r.Index == "" {
				return true
			}
		}
		return false
	})
	// And then it blocks again at the real, lower index.
	wait.For(t, 10*time.Second, "a blocking query at the real index", func() bool {
		reqs := healthReqs(e.proxy)
		n, _ := strconv.ParseUint(reqs[len(reqs)-1].Index, 10, 64)
		return n > 0 && n < high
	})
	if got := e.rec.last(); len(got) != 1 {
		t.Errorf("got %d endpoints, want 1 (results kept across the reset)", len(got))
	}
}

// TestIndexNeverZeroAfterFirstRead: an agent answering index 0 makes the
// resolver block at index 1, never query with 0 (which returns at once).
func TestIndexNeverZeroAfterFirstRead(t *testing.T) {
	e := startIndexEnv(t, testConfig(), func(uint64) uint64 { return 0 })
	wait.For(t, 10*time.Second, "5 queries", func() bool { return len(healthReqs(e.proxy)) >= 5 })
	reqs := healthReqs(e.proxy)
	if reqs[0].Index != "" {
		t.Errorf("first query: got index %q, want none", reqs[0].Index)
	}
	for i, r := range reqs[1:] {
		if r.Index != "1" {
			t.Errorf("query %d: got index %q, want 1", i+2, r.Index)
		}
	}
}

// TestRateLimitWhenIndexDoesNotMove: an agent that answers at once with the
// same index is queried at most once per min interval.
func TestRateLimitWhenIndexDoesNotMove(t *testing.T) {
	cfg := testConfig()
	// Index 1 is below the agent's, so the agent answers at once; the
	// rewrite makes the index look stuck.
	e := startIndexEnv(t, cfg, func(uint64) uint64 { return 1 })
	wait.For(t, 10*time.Second, "8 queries", func() bool { return len(healthReqs(e.proxy)) >= 8 })
	reqs := healthReqs(e.proxy)
	// The proxy sees when queries arrive, not when they start: a gap
	// between two arrivals also carries the difference of their trips, which
	// scheduling on a loaded machine can make tens of milliseconds. Over the
	// whole span the trips' differences cancel out but for the first and
	// the last, so the span is checked (timers never fire early; 50ms for
	// those two trips).
	n := len(reqs) - 2 // gaps from the second query on
	if span := reqs[len(reqs)-1].At.Sub(reqs[1].At); span < time.Duration(n)*cfg.minInterval-50*time.Millisecond {
		t.Errorf("%d queries after the second came within %v, want >= %v (one per %v)", n, span, time.Duration(n)*cfg.minInterval, cfg.minInterval)
	}
}

// TestBackoffWithJitterOnErrors: failed queries are retried with growing,
// jittered delays, and reported as errors; the endpoints stay.
func TestBackoffWithJitterOnErrors(t *testing.T) {
	cfg := testConfig()
	e := startIndexEnv(t, cfg, nil)
	wait.For(t, 10*time.Second, "the first answer", func() bool { r, _ := e.rec.counts(); return r >= 1 })
	e.proxy.SetFailing(http.StatusInternalServerError)
	// A query in flight may still succeed; count from the first failure.
	wait.For(t, 10*time.Second, "the first error", func() bool { _, n := e.rec.counts(); return n >= 1 })
	replaces, _ := e.rec.counts()
	mark := len(healthReqs(e.proxy)) - 1
	// The proxy sees a query before its error reaches the resolver: wait
	// for both.
	wait.For(t, 10*time.Second, "10 failed queries, reported", func() bool {
		_, errs := e.rec.counts()
		return len(healthReqs(e.proxy)) >= mark+10 && errs >= 10
	})
	reqs := healthReqs(e.proxy)[mark:]
	var gaps []time.Duration
	for i := 1; i < len(reqs); i++ {
		gaps = append(gaps, reqs[i].At.Sub(reqs[i-1].At))
	}
	// Delay k is in [ceil/2, ceil] with ceil = 20ms·2^k capped at 160ms.
	for k, g := range gaps {
		ceil := min(cfg.backoff.Min<<k, cfg.backoff.Max)
		if g < ceil/2-15*time.Millisecond { // arrival times jitter under load
			t.Errorf("gap %d: got %v, want >= %v", k, g, ceil/2)
		}
	}
	capped := gaps[4:]
	distinct := map[time.Duration]bool{}
	for _, g := range capped {
		distinct[g.Round(time.Millisecond)] = true
	}
	if len(distinct) < 2 {
		t.Errorf("got capped gaps %v, want jitter (different delays)", capped)
	}
	if r, _ := e.rec.counts(); r != replaces {
		t.Errorf("got %d replaces during the outage, want %d (the set is kept)", r, replaces)
	}
	e.proxy.SetFailing(0)
	wait.For(t, 10*time.Second, "an answer after the outage", func() bool { r, _ := e.rec.counts(); return r > replaces })
}

func TestEndpointsFromEntries(t *testing.T) {
	entry := func(id, addr string, port int, w api.AgentWeights, status string) *api.ServiceEntry {
		return &api.ServiceEntry{
			Node: &api.Node{Node: "n1", Address: "10.0.0.1"},
			Service: &api.AgentService{ID: id, Service: "svc", Address: addr, Port: port, Weights: w,
				Tags: []string{"a", "b"}, Meta: map[string]string{"zone": "z1", "version": "v3"}},
			Checks: api.HealthChecks{{CheckID: "serfHealth", Status: api.HealthPassing}, {CheckID: "service:" + id, Status: status}},
		}
	}
	entries := []*api.ServiceEntry{
		entry("pass", "127.0.0.1", 1, api.AgentWeights{Passing: 10, Warning: 1}, api.HealthPassing),
		entry("warn", "127.0.0.2", 2, api.AgentWeights{Passing: 10, Warning: 3}, api.HealthWarning),
		entry("warn0", "127.0.0.3", 3, api.AgentWeights{Passing: 10, Warning: 0}, api.HealthWarning),
		entry("crit", "127.0.0.4", 4, api.AgentWeights{Passing: 10, Warning: 1}, api.HealthCritical),
		entry("nodeaddr", "", 5, api.AgentWeights{Passing: 1, Warning: 1}, api.HealthPassing),
		entry("noport", "127.0.0.6", 0, api.AgentWeights{Passing: 1, Warning: 1}, api.HealthPassing),
		nil,
	}
	tests := []struct {
		name        string
		passingOnly bool
		want        map[string]uint32 // addr -> weight
	}{
		{"passing only", true, map[string]uint32{"127.0.0.1:1": 10, "10.0.0.1:5": 1}},
		{"with warning", false, map[string]uint32{"127.0.0.1:1": 10, "127.0.0.2:2": 3, "10.0.0.1:5": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := endpoints(entries, tt.passingOnly)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for _, ep := range got {
				w, ok := tt.want[ep.Addr]
				if !ok || ep.Weight != w {
					t.Errorf("got %s weight %d, want weight %d (present %v)", ep.Addr, ep.Weight, w, ok)
				}
				if ep.Zone != "z1" || ep.Version != "v3" || ep.Metadata[MetaTags] != "a,b" || ep.Metadata[MetaNode] != "n1" {
					t.Errorf("got %+v, want zone, version, tags and node", ep)
				}
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	base := query{passingOnly: true, tags: []string{"x"}}
	tests := []struct {
		raw     string
		want    query
		wantErr bool
	}{
		{"", base, false},
		{"tag=a&tag=b", query{passingOnly: true, tags: []string{"a", "b"}}, false},
		{"dc=dc2&near=_agent&ns=team&partition=p&passing=false", query{tags: []string{"x"}, dc: "dc2", near: "_agent", namespace: "team", partition: "p"}, false},
		{"passing=maybe", query{}, true},
		{"tag=", query{}, true},
		{"colour=blue", query{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.raw)
			got, err := parseQuery(v, base)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseTarget feeds dial targets through gRPC's target parsing, the
// core's and this backend's query parsing: no panic, and an accepted target
// has a valid service name and no empty tag.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"consul:///svc", "consul:///svc?tag=a&tag=b&dc=dc1&near=_agent&passing=false",
		"consul:///svc?ns=team&partition=p", "consul://host/svc", "consul:///", "consul:///a/b",
		"consul:///svc?passing=2", "consul:///svc?tag=&x=%zz", "consul:///%00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		pt, err := resolver.ParseTarget(grpcresolver.Target{URL: *u})
		if err != nil {
			return
		}
		q, err := parseQuery(pt.Query, query{passingOnly: true})
		if err != nil {
			return
		}
		if resolver.ValidateService(pt.Service) != nil {
			t.Errorf("accepted invalid service %q", pt.Service)
		}
		for _, tag := range q.tags {
			if tag == "" {
				t.Errorf("accepted an empty tag in %q", raw)
			}
		}
	})
}
