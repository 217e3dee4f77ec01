package etcdtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

// EnvEndpoints names the variable that points tests at an external etcd.
const EnvEndpoints = "GRPCKIT_ETCD_ENDPOINTS"

// Embedded is an embedded single-member etcd.
type Embedded struct {
	dir       string
	clientURL url.URL
	peerURL   url.URL

	mu sync.Mutex
	e  *embed.Etcd
}

// StartEmbedded starts an etcd with its data in dir, on two free loopback
// ports, and waits until it is ready.
func StartEmbedded(dir string) (*Embedded, error) {
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &Embedded{
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
func (m *Embedded) Endpoints() []string { return []string{m.clientURL.String()} }

// Start starts etcd again after Stop, on the same ports and data. It is a
// no-op while etcd runs.
func (m *Embedded) Start() error {
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
		return fmt.Errorf("etcdtest: start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcdtest: etcd failed: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return errors.New("etcdtest: etcd not ready after 30s")
	}
	m.e = e
	return nil
}

// Stop stops etcd, keeping its data. It is idempotent.
func (m *Embedded) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
}

// Etcd is the etcd a test uses, embedded or external.
type Etcd struct {
	// Embedded is nil when the test uses an external etcd.
	Embedded *Embedded
	// Prefix is a key prefix unique to the test ("/grpckit-test/<random>/").
	Prefix    string
	endpoints []string
}

// Start returns an etcd for tb: the external one named by
// GRPCKIT_ETCD_ENDPOINTS, or a new embedded one in tb.TempDir(). Everything
// is released when the test ends.
func Start(tb testing.TB) *Etcd {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	e := &Etcd{Prefix: "/grpckit-test/" + hex.EncodeToString(b[:]) + "/"}
	if env := os.Getenv(EnvEndpoints); env != "" {
		e.endpoints = strings.Split(env, ",")
		tb.Cleanup(func() {
			c, err := e.newClient()
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
	m, err := StartEmbedded(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Stop)
	e.Embedded = m
	e.endpoints = m.Endpoints()
	return e
}

// Endpoints returns the client URLs.
func (e *Etcd) Endpoints() []string { return e.endpoints }

// RequireEmbedded skips the test when etcd is external (it cannot be
// stopped).
func (e *Etcd) RequireEmbedded(tb testing.TB) {
	tb.Helper()
	if e.Embedded == nil {
		tb.Skipf("needs an embedded etcd to stop and start; %s is set", EnvEndpoints)
	}
}

// Stop stops the embedded etcd.
func (e *Etcd) Stop(tb testing.TB) {
	tb.Helper()
	e.RequireEmbedded(tb)
	e.Embedded.Stop()
}

// Restart starts the embedded etcd again on the same ports and data.
func (e *Etcd) Restart(tb testing.TB) {
	tb.Helper()
	e.RequireEmbedded(tb)
	if err := e.Embedded.Start(); err != nil {
		tb.Fatal(err)
	}
}

// Client returns a new client, closed when the test ends.
func (e *Etcd) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	c, err := e.newClient()
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func (e *Etcd) newClient() (*clientv3.Client, error) {
	return NewClient(e.endpoints)
}

// NewClient returns a quiet client for endpoints.
func NewClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}
