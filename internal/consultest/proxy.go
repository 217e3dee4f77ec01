package consultest

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// EnvAddr names the environment variable that points the tests at a real
// Consul agent's HTTP API (host:port).
const EnvAddr = "GRPCKIT_CONSUL_ADDR"

// Agent is the Consul agent a test talks to: the fake ([Server]) or, when
// GRPCKIT_CONSUL_ADDR is set, a real agent. Every control a backend test
// needs works on both.
type Agent struct {
	// Addr is the agent's HTTP address.
	Addr string
	// Fake is the in-process agent, or nil for a real one.
	Fake *Server
}

// StartAgent returns the agent for tb: the real one named by GRPCKIT_CONSUL_ADDR,
// or a fresh fake.
func StartAgent(tb testing.TB) *Agent {
	tb.Helper()
	if addr := os.Getenv(EnvAddr); addr != "" {
		return &Agent{Addr: addr}
	}
	s := Start(tb)
	return &Agent{Addr: s.Addr(), Fake: s}
}

// Client returns a consul/api client for the agent.
func (a *Agent) Client(tb testing.TB) *api.Client { return NewClient(tb, a.Addr) }

// NewClient returns a consul/api client for addr.
func NewClient(tb testing.TB, addr string) *api.Client {
	tb.Helper()
	c := api.DefaultConfig()
	c.Address, c.Scheme = addr, "http"
	cl, err := api.NewClient(c)
	if err != nil {
		tb.Fatalf("consul client: %v", err)
	}
	return cl
}

// Forget makes the agent lose a registration as a restarted agent does: it
// deregisters serviceID through the agent API, which works on a real agent
// too.
func (a *Agent) Forget(tb testing.TB, serviceID string) {
	tb.Helper()
	if err := a.Client(tb).Agent().ServiceDeregister(serviceID); err != nil {
		tb.Fatalf("deregister %s: %v", serviceID, err)
	}
}

// ProxyRequest is one request the proxy forwarded.
type ProxyRequest struct {
	Path  string
	Index string // the index query parameter, "" when absent
	Wait  string // the wait query parameter
	Body  []byte // the body of a PUT (at most 64 KiB)
	At    time.Time
}

// Proxy is an HTTP reverse proxy on loopback in front of a Consul agent
// (fake or real). Tests point clients at it to take the endpoint down
// ([Proxy.Down]: connections refused), make it fail ([Proxy.SetFailing]),
// and rewrite the X-Consul-Index it returns ([Proxy.SetIndexRewrite]).
type Proxy struct {
	addr string
	rp   *httputil.ReverseProxy

	mu      sync.Mutex
	hs      *http.Server
	served  chan struct{}
	failing int
	rewrite func(uint64) uint64
	reqs    []ProxyRequest
}

// StartProxy runs a proxy to the agent at target and closes it when the
// test ends.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	u := &url.URL{Scheme: "http", Host: target}
	p := &Proxy{}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		ModifyResponse: func(resp *http.Response) error {
			p.mu.Lock()
			rw := p.rewrite
			p.mu.Unlock()
			if rw == nil {
				return nil
			}
			if v := resp.Header.Get("X-Consul-Index"); v != "" {
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					resp.Header.Set("X-Consul-Index", strconv.FormatUint(rw(n), 10))
				}
			}
			return nil
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("consultest proxy: %v", err)
	}
	p.addr = lis.Addr().String()
	p.serve(lis)
	tb.Cleanup(p.Down)
	return p
}

func (p *Proxy) serve(lis net.Listener) {
	hs := &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	p.hs, p.served = hs, served
	go func() {
		defer close(served)
		_ = hs.Serve(lis)
	}()
}

func (p *Proxy) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pr := ProxyRequest{Path: r.URL.Path, Index: q.Get("index"), Wait: q.Get("wait"), At: time.Now()}
	if r.Method == http.MethodPut && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pr.Body = body
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, pr)
	failing := p.failing
	p.mu.Unlock()
	if failing != 0 {
		http.Error(w, "injected by consultest proxy", failing)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Down closes the proxy's listener and every connection through it: the
// endpoint refuses connections until [Proxy.Up]. Idempotent.
func (p *Proxy) Down() {
	p.mu.Lock()
	hs, served := p.hs, p.served
	p.hs = nil
	p.mu.Unlock()
	if hs == nil {
		return
	}
	_ = hs.Close()
	<-served
}

// Up serves again on the same address.
func (p *Proxy) Up(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hs != nil {
		return
	}
	lis, err := net.Listen("tcp", p.addr)
	if err != nil {
		tb.Fatalf("consultest proxy up: %v", err)
	}
	p.serve(lis)
}

// SetFailing makes the proxy answer every request with code (0 forwards
// again).
func (p *Proxy) SetFailing(code int) {
	p.mu.Lock()
	p.failing = code
	p.mu.Unlock()
}

// SetIndexRewrite rewrites the X-Consul-Index of every answer with f (nil
// stops rewriting).
func (p *Proxy) SetIndexRewrite(f func(uint64) uint64) {
	p.mu.Lock()
	p.rewrite = f
	p.mu.Unlock()
}

// Requests returns the requests forwarded or failed so far.
func (p *Proxy) Requests() []ProxyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProxyRequest(nil), p.reqs...)
}
