package consultest

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/internal/wait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func register(t *testing.T, c *api.Client, id, name string, tags []string, ttl, dcsa string) {
	t.Helper()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: name, Address: "127.0.0.1", Port: 8080, Tags: tags,
		Meta:    map[string]string{"version": "v1"},
		Weights: &api.AgentWeights{Passing: 10, Warning: 1},
		Check:   &api.AgentServiceCheck{TTL: ttl, Status: api.HealthPassing, DeregisterCriticalServiceAfter: dcsa},
	})
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}

func TestHealthServiceShapesAndFilters(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	register(t, c, "a", "svc", []string{"blue", "canary"}, "1m", "")
	register(t, c, "b", "svc", []string{"blue"}, "1m", "")
	register(t, c, "other", "other", nil, "1m", "")
	if !s.SetCheckStatus("service:b", api.HealthWarning) {
		t.Fatal("SetCheckStatus(service:b) = false, want true")
	}

	tests := []struct {
		name    string
		tags    []string
		passing bool
		want    []string
	}{
		{"all", nil, false, []string{"a", "b"}},
		{"passing", nil, true, []string{"a"}},
		{"tag", []string{"blue"}, false, []string{"a", "b"}},
		{"tags all must match", []string{"blue", "canary"}, false, []string{"a"}},
		{"unknown tag", []string{"red"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, meta, err := c.Health().ServiceMultipleTags("svc", tt.tags, tt.passing, nil)
			if err != nil {
				t.Fatalf("health: %v", err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Service.ID)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
			if meta.LastIndex == 0 || !meta.KnownLeader {
				t.Errorf("got LastIndex %d KnownLeader %v, want >0 and true", meta.LastIndex, meta.KnownLeader)
			}
		})
	}

	entries, _, err := c.Health().Service("svc", "canary", false, nil)
	if err != nil || len(entries) != 1 {
		t.Fatalf("got %d entries, %v; want 1", len(entries), err)
	}
	e := entries[0]
	if e.Node.Node != NodeName || e.Node.Datacenter != Datacenter {
		t.Errorf("got node %q dc %q, want %q %q", e.Node.Node, e.Node.Datacenter, NodeName, Datacenter)
	}
	if e.Service.Address != "127.0.0.1" || e.Service.Port != 8080 || e.Service.Weights.Passing != 10 || e.Service.Meta["version"] != "v1" {
		t.Errorf("got service %+v, want address, port, weights and meta as registered", e.Service)
	}
	if len(e.Checks) != 2 || e.Checks[0].CheckID != "serfHealth" || e.Checks[1].CheckID != "service:a" || e.Checks[1].Type != "ttl" {
		t.Errorf("got checks %+v, want serfHealth and service:a", e.Checks)
	}
}

func TestQueryParameterErrors(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	tests := []struct {
		name string
		q    *api.QueryOptions
		code int
	}{
		{"unknown dc", &api.QueryOptions{Datacenter: "dc9"}, 500},
		{"namespace", &api.QueryOptions{Namespace: "team"}, 400},
		{"partition", &api.QueryOptions{Partition: "p"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.Health().Service("svc", "", false, tt.q)
			var se api.StatusError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Fatalf("got %v, want status %d", err, tt.code)
			}
		})
	}
	if _, _, err := c.Health().Service("svc", "", false, &api.QueryOptions{Datacenter: Datacenter, Near: "_agent", Namespace: "default"}); err != nil {
		t.Fatalf("dc1, near, default ns: got %v, want nil", err)
	}
}

func TestBlockingQuery(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	register(t, c, "a", "svc", nil, "1m", "")
	_, meta, err := c.Health().Service("svc", "", true, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Wait elapses: same index, after at least the wait.
	start := time.Now()
	_, m2, err := c.Health().Service("svc", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 100*time.Millisecond || m2.LastIndex != meta.LastIndex {
		t.Errorf("got index %d after %v, want %d after >= 100ms", m2.LastIndex, el, meta.LastIndex)
	}

	// A change wakes the query.
	type res struct {
		n   int
		idx uint64
		err error
	}
	done := make(chan res, 1)
	go func() {
		e, m, err := c.Health().Service("svc", "", true, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		if err != nil {
			done <- res{err: err}
			return
		}
		done <- res{n: len(e), idx: m.LastIndex}
	}()
	wait.For(t, 10*time.Second, "the query to block", func() bool { return s.Requests("health") == 3 })
	select {
	case r := <-done:
		t.Fatalf("query returned %+v before any change, want it to block", r)
	case <-time.After(50 * time.Millisecond):
	}
	s.SetCheckStatus("service:a", api.HealthCritical)
	r := <-done
	if r.err != nil || r.n != 0 || r.idx <= meta.LastIndex {
		t.Fatalf("got %+v, want 0 passing entries at an index > %d", r, meta.LastIndex)
	}

	// Another service's change does not wake it.
	_, meta, _ = c.Health().Service("svc", "", false, nil)
	done2 := make(chan uint64, 1)
	go func() {
		_, m, _ := c.Health().Service("svc", "", false, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 300 * time.Millisecond})
		done2 <- m.LastIndex
	}()
	register(t, c, "x", "other", nil, "1m", "")
	if got := <-done2; got != meta.LastIndex {
		t.Errorf("got index %d, want %d (unrelated change)", got, meta.LastIndex)
	}
}

func TestIndexGoesBackwards(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	register(t, c, "a", "svc", nil, "1m", "")
	_, meta, _ := c.Health().Service("svc", "", false, nil)
	s.SetIndex(1)
	// As in Consul, a query at the old, higher index blocks until the wait
	// ends and then reports the lower index.
	_, m2, err := c.Health().Service("svc", "", false, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 50 * time.Millisecond})
	if err != nil || m2.LastIndex != 1 {
		t.Fatalf("got index %d, %v; want 1", m2.LastIndex, err)
	}
}

func TestTTLAndChecks(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	register(t, c, "a", "svc", nil, "100ms", "")
	wait.For(t, 10*time.Second, "TTL expiry", func() bool { return s.CheckStatus("service:a") == api.HealthCritical })

	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"pass", func() error { return c.Agent().PassTTL("service:a", "ok") }, api.HealthPassing},
		{"warn", func() error { return c.Agent().WarnTTL("service:a", "meh") }, api.HealthWarning},
		{"fail", func() error { return c.Agent().FailTTL("service:a", "bad") }, api.HealthCritical},
		{"update", func() error { return c.Agent().UpdateTTL("service:a", "ok", api.HealthPassing) }, api.HealthPassing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
			// The TTL restarts on each update; read before it runs out.
			if got := s.CheckStatus("service:a"); got != tt.want && got != api.HealthCritical {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	err := c.Agent().PassTTL("service:nope", "")
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Errorf("pass unknown check: got %v, want 404", err)
	}
}

func TestDeregisterCriticalServiceAfter(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	register(t, c, "a", "svc", nil, "50ms", "100ms")
	wait.For(t, 10*time.Second, "the critical service to be reaped", func() bool { return len(s.Services()) == 0 })
}

func TestAgentEndpoints(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	register(t, c, "a", "svc", nil, "1m", "")
	svc, _, err := c.Agent().Service("a", nil)
	if err != nil || svc.Service != "svc" || svc.Port != 8080 {
		t.Fatalf("got %+v, %v; want svc:8080", svc, err)
	}
	if err := c.Agent().ServiceDeregister("a"); err != nil {
		t.Fatal(err)
	}
	err = c.Agent().ServiceDeregister("a")
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Errorf("second deregister: got %v, want 404", err)
	}
	register(t, c, "b", "svc", nil, "1m", "")
	s.Forget()
	if got := s.Services(); len(got) != 0 {
		t.Errorf("after Forget got %v, want none", got)
	}
}

func TestFailingStopStart(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	s.SetFailing(500)
	if _, _, err := c.Health().Service("svc", "", false, nil); err == nil {
		t.Error("failing: got nil error, want 500")
	}
	s.SetFailing(0)
	register(t, c, "a", "svc", nil, "1m", "")
	s.Stop()
	if _, _, err := c.Health().Service("svc", "", false, nil); err == nil {
		t.Error("stopped: got nil error, want connection refused")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	e, _, err := c.Health().Service("svc", "", false, nil)
	if err != nil || len(e) != 1 {
		t.Errorf("restarted: got %d entries, %v; want 1 (registrations kept)", len(e), err)
	}
	// The request made while stopped never arrived.
	if got := s.Requests("health"); got != 2 {
		t.Errorf("got %d health requests, want 2", got)
	}
}

func TestProxy(t *testing.T) {
	a := StartAgent(t)
	p := StartProxy(t, a.Addr)
	c := NewClient(t, p.Addr())
	direct := a.Client(t)
	name := "consultest-proxy-" + time.Now().Format("150405.000000")
	register(t, direct, name, name, nil, "1m", "")
	t.Cleanup(func() { _ = direct.Agent().ServiceDeregister(name) })

	e, meta, err := c.Health().Service(name, "", false, nil)
	if err != nil || len(e) != 1 {
		t.Fatalf("through proxy: got %d entries, %v; want 1", len(e), err)
	}
	p.SetIndexRewrite(func(uint64) uint64 { return 0 })
	_, m0, _ := c.Health().Service(name, "", false, nil)
	if m0.LastIndex != 0 {
		t.Errorf("rewritten: got index %d, want 0", m0.LastIndex)
	}
	p.SetIndexRewrite(nil)
	p.SetFailing(500)
	if _, _, err := c.Health().Service(name, "", false, nil); err == nil {
		t.Error("failing proxy: got nil error")
	}
	p.SetFailing(0)
	p.Down()
	if _, _, err := c.Health().Service(name, "", false, nil); err == nil {
		t.Error("proxy down: got nil error")
	}
	p.Up(t)
	if _, m, err := c.Health().Service(name, "", false, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 10 * time.Millisecond}); err != nil || m.LastIndex < meta.LastIndex {
		t.Errorf("proxy up: got %v, %v", m, err)
	}
	reqs := p.Requests()
	if last := reqs[len(reqs)-1]; last.Index == "" || last.Wait != "10ms" {
		t.Errorf("got last request %+v, want index and wait=10ms recorded", last)
	}
}

// clientConnGoroutines counts the goroutines of net/http client
// connections (persistConn's readLoop and writeLoop) in the process.
func clientConnGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var count int
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn).readLoop") || strings.Contains(g, "net/http.(*persistConn).writeLoop") {
			count++
		}
	}
	return count
}

// TestHelpersLeaveNoClientConnections: against an agent that stays up, as a
// real one does, no net/http client connection is left once a test that
// used the helpers has cleaned up (goleak would report its goroutines).
func TestHelpersLeaveNoClientConnections(t *testing.T) {
	read := func(t *testing.T, c *api.Client) {
		t.Helper()
		if _, _, err := c.Health().Service("svc", "", false, nil); err != nil {
			t.Fatalf("health: %v", err)
		}
	}
	tests := []struct {
		name string
		use  func(t *testing.T, s *Server)
	}{
		{"NewClient", func(t *testing.T, s *Server) { read(t, NewClient(t, s.Addr())) }},
		{"Server.Client", func(t *testing.T, s *Server) { read(t, s.Client(t)) }},
		{"Agent.Client and Forget", func(t *testing.T, s *Server) {
			agent := &Agent{Addr: s.Addr()} // a real one, to the helpers
			register(t, agent.Client(t), "a", "svc", nil, "1m", "")
			agent.Forget(t, "a")
		}},
		{"Proxy", func(t *testing.T, s *Server) {
			p := StartProxy(t, s.Addr())
			read(t, NewClient(t, p.Addr()))
		}},
		{"Proxy down and up", func(t *testing.T, s *Server) {
			p := StartProxy(t, s.Addr())
			c := NewClient(t, p.Addr())
			read(t, c)
			p.Down()
			p.Up(t)
			read(t, c)
		}},
		{"blocking query through the proxy", func(t *testing.T, s *Server) {
			p := StartProxy(t, s.Addr())
			c := NewClient(t, p.Addr())
			_, meta, err := c.Health().Service("svc", "", false, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Blocks at the agent until the wait ends.
			if _, _, err := c.Health().Service("svc", "", false, &api.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: 20 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		// New, not Start: the agent stays up after the subtest's cleanup.
		s, err := New("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Run(tt.name, func(t *testing.T) { tt.use(t, s) })
		var n int
		if !wait.Poll(5*time.Second, func() bool { n = clientConnGoroutines(); return n == 0 }) {
			t.Errorf("%s: got %d net/http persistConn goroutines after the cleanup, want 0", tt.name, n)
		}
		s.Close()
	}
}

// cleanupTB records what Start registers and reports.
type cleanupTB struct {
	testing.TB
	cleanups []func()
	errs     []string
}

func (c *cleanupTB) Helper()          {}
func (c *cleanupTB) Cleanup(f func()) { c.cleanups = append(c.cleanups, f) }
func (c *cleanupTB) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// TestStartReportsOpenClientConnections: a client that leaves its idle
// connections open fails the test that started the fake.
func TestStartReportsOpenClientConnections(t *testing.T) {
	for _, leak := range []bool{false, true} {
		t.Run(fmt.Sprintf("leak=%v", leak), func(t *testing.T) {
			tb := &cleanupTB{TB: t}
			s := Start(tb)
			s.connWait = 100 * time.Millisecond
			cfg := api.DefaultConfig()
			cfg.Address = s.Addr()
			c, err := api.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cfg.Transport.CloseIdleConnections()
			if _, _, err := c.Health().Service("svc", "", false, nil); err != nil {
				t.Fatal(err)
			}
			if !leak {
				cfg.Transport.CloseIdleConnections()
			}
			for i := len(tb.cleanups) - 1; i >= 0; i-- {
				tb.cleanups[i]()
			}
			if got := len(tb.errs) > 0; got != leak {
				t.Errorf("got errors %q, want errors %v", tb.errs, leak)
			}
		})
	}
}
