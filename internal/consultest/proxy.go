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
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/wait"
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

// NewClient returns a consul/api client for addr, with a connection pool of
// its own whose idle connections are closed when the test ends. An agent,
// unlike the fake closing at the end of a test, keeps idle keep-alive
// connections open, and with them the client's net/http goroutines.
func NewClient(tb testing.TB, addr string) *api.Client {
	tb.Helper()
	c := api.DefaultConfig() // a new transport each time
	c.Address, c.Scheme = addr, "http"
	cl, err := api.NewClient(c)
	if err != nil {
		tb.Fatalf("consul client: %v", err)
	}
	tb.Cleanup(c.Transport.CloseIdleConnections)
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
	// upstream is the proxy's own pool of connections to the agent.
	upstream *http.Transport
	handling atomic.Int64 // requests being handled

	mu      sync.Mutex
	hs      *http.Server
	served  chan struct{}
	failing int
	rewrite func(uint64) uint64
	reqs    []ProxyRequest
}

// StartProxy runs a proxy to the agent at target and closes it, and its
// connections to the agent, when the test ends.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	u := &url.URL{Scheme: "http", Host: target}
	p := &Proxy{upstream: http.DefaultTransport.(*http.Transport).Clone()}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: p.upstream,
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
	tb.Cleanup(func() {
		p.Down()
		// A request that was being forwarded may still hand its
		// connection to the agent back to the pool: wait for it, then
		// close them all.
		if !wait.Poll(5*time.Second, func() bool { return p.handling.Load() == 0 }) {
			tb.Errorf("consultest proxy: %d requests still being handled 5s after it went down", p.handling.Load())
		}
		p.upstream.CloseIdleConnections()
	})
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
	p.handling.Add(1)
	defer p.handling.Add(-1)
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
	failing, down := p.failing, p.hs == nil
	p.mu.Unlock()
	if down {
		// Read just before Down closed the connection: not forwarded, so
		// that no connection to the agent opens after the cleanup.
		http.Error(w, "consultest proxy is down", http.StatusServiceUnavailable)
		return
	}
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
	// While the proxy was down, the port was free for anyone: an outgoing
	// connection may hold it for a moment. Retry as etcdtest does.
	var lis net.Listener
	var err error
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if lis, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(end) {
			break
		}
	}
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
