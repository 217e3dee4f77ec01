// Package etcdtest is the etcd grpckit's tests, benchmarks and fault suite
// run against: an embedded single-member etcd
// (go.etcd.io/etcd/server/v3/embed) on 127.0.0.1 ports in a temporary
// directory, which can be stopped and started again on the same ports and
// data, or an external etcd named by GRPCKIT_ETCD_ENDPOINTS.
//
// Only tests import it, so that etcd's server is compiled into tests only,
// never into a program that imports grpckit (.ci/run checks that no other
// package of the module depends on etcd's server).
//
// With GRPCKIT_ETCD_ENDPOINTS set (comma-separated client URLs, e.g.
// "http://127.0.0.1:2379"), [StartTestEtcd] uses that etcd, gives each test
// its own key prefix, and deletes the prefix when the test ends; tests that
// must stop etcd call [TestEtcd.RequireEmbedded] and are skipped.
package etcdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EnvTestEndpoints names the variable that points the tests at an external
// etcd.
const EnvTestEndpoints = "GRPCKIT_ETCD_ENDPOINTS"

// EmbeddedEtcd is an embedded single-member etcd.
type EmbeddedEtcd struct {
	dir       string
	clientURL url.URL
	peerURL   url.URL

	mu sync.Mutex
	e  *embed.Etcd
}

// StartEmbeddedEtcd starts an etcd with its data in dir, on two free
// loopback ports, and waits until it is ready.
func StartEmbeddedEtcd(dir string) (*EmbeddedEtcd, error) {
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &EmbeddedEtcd{
		dir:       dir,
		clientURL: url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", cport)},
		peerURL:   url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", pport)},
	}
	if err := m.Start(); err != nil {
		return nil, err
	}
	return m, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Endpoints returns the client URLs.
func (m *EmbeddedEtcd) Endpoints() []string { return []string{m.clientURL.String()} }

// Start starts etcd again after Stop, on the same ports and data. It is a
// no-op while etcd runs.
func (m *EmbeddedEtcd) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		return nil
	}
	cfg := embed.NewConfig()
	cfg.Name = "grpckit"
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.ListenPeerUrls = []url.URL{m.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.UnsafeNoFsync = os.Getenv("GRPCKIT_ETCD_FSYNC") == ""
	var (
		e   *embed.Etcd
		err error
	)
	// The ports were free a moment ago; after a Stop they may linger briefly.
	for attempt := 0; attempt < 50; attempt++ {
		e, err = embed.StartEtcd(cfg)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("etcd test helper: start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd test helper: etcd failed: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return errors.New("etcd test helper: etcd not ready after 30s")
	}
	m.e = e
	return nil
}

// Stop stops etcd, keeping its data. It is idempotent.
func (m *EmbeddedEtcd) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
}

// TestEtcd is the etcd a test uses, embedded or external.
type TestEtcd struct {
	// Embedded is nil when the test uses an external etcd.
	Embedded *EmbeddedEtcd
	// Prefix is a key prefix unique to the test ("/grpckit-test/<random>/").
	Prefix    string
	endpoints []string
}

// StartTestEtcd returns an etcd for tb: the external one named by
// GRPCKIT_ETCD_ENDPOINTS, or a new embedded one in tb.TempDir().
// Everything is released when the test ends.
func StartTestEtcd(tb testing.TB) *TestEtcd {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	e := &TestEtcd{Prefix: "/grpckit-test/" + hex.EncodeToString(b[:]) + "/"}
	if env := os.Getenv(EnvTestEndpoints); env != "" {
		e.endpoints = strings.Split(env, ",")
		tb.Cleanup(func() {
			c, err := NewTestClient(e.endpoints)
			if err != nil {
				return
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = c.Delete(ctx, e.Prefix, clientv3.WithPrefix())
		})
		return e
	}
	m, err := StartEmbeddedEtcd(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Stop)
	e.Embedded = m
	e.endpoints = m.Endpoints()
	return e
}

// Endpoints returns the client URLs.
func (e *TestEtcd) Endpoints() []string { return e.endpoints }

// RequireEmbedded skips the test when etcd is external (it cannot be
// stopped).
func (e *TestEtcd) RequireEmbedded(tb testing.TB) {
	tb.Helper()
	if e.Embedded == nil {
		tb.Skipf("needs an embedded etcd to stop and start; %s is set", EnvTestEndpoints)
	}
}

// Stop stops the embedded etcd.
func (e *TestEtcd) Stop(tb testing.TB) {
	tb.Helper()
	e.RequireEmbedded(tb)
	e.Embedded.Stop()
}

// Restart starts the embedded etcd again on the same ports and data.
func (e *TestEtcd) Restart(tb testing.TB) {
	tb.Helper()
	e.RequireEmbedded(tb)
	if err := e.Embedded.Start(); err != nil {
		tb.Fatal(err)
	}
}

// Client returns a new client, closed when the test ends.
func (e *TestEtcd) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	c, err := NewTestClient(e.endpoints)
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// NewTestClient returns a quiet client for endpoints.
func NewTestClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// TestProxy forwards TCP connections to an etcd endpoint on loopback and
// can cut them, standing for a network partition between one client and
// etcd while other clients still reach it.
type TestProxy struct {
	lis    net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// NewTestProxy starts a proxy to endpoint (a URL such as
// http://127.0.0.1:2379 or a host:port), stopped when the test ends.
func NewTestProxy(tb testing.TB, endpoint string) *TestProxy {
	tb.Helper()
	target := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			tb.Fatalf("proxy target %q: %v", endpoint, err)
		}
		target = u.Host
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy listen: %v", err)
	}
	p := &TestProxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Endpoint is the proxy's address as an etcd endpoint.
func (p *TestProxy) Endpoint() string { return "http://" + p.lis.Addr().String() }

// Cut closes every proxied connection and refuses new ones until Restore.
func (p *TestProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore accepts connections again.
func (p *TestProxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *TestProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_, _ = in.Close(), out.Close()
			continue
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// pipe copies src to dst; when either side ends, both close.
func (p *TestProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *TestProxy) close() {
	_ = p.lis.Close()
	p.Cut()
	p.wg.Wait()
}
