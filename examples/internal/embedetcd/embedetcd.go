// Package embedetcd runs a single-member etcd inside the demo process
// (go.etcd.io/etcd/server/v3/embed), on two free loopback ports, with its
// data in a directory of the caller's choosing. It stands in for the etcd
// cluster a real deployment runs; programs connect to it with clientv3 and
// [Etcd.Endpoints] as they would to any etcd.
package embedetcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Etcd is a running embedded etcd.
type Etcd struct {
	e         *embed.Etcd
	cfg       *embed.Config
	endpoints []string
}

// Start starts an etcd with its data in dir and waits until it is ready.
// Close stops it.
func Start(dir string) (*Etcd, error) {
	clientURL, err := freeURL()
	if err != nil {
		return nil, err
	}
	peerURL, err := freeURL()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "demo"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// A demo's data may be lost: no fsync, and a short election.
	cfg.UnsafeNoFsync = true
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	e, err := startEtcd(cfg)
	if err != nil {
		return nil, err
	}
	return &Etcd{e: e, cfg: cfg, endpoints: []string{clientURL.String()}}, nil
}

// startEtcd starts etcd with cfg and waits until it is ready.
func startEtcd(cfg *embed.Config) (*embed.Etcd, error) {
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: start: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedetcd: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, errors.New("embedetcd: not ready after 30s")
	}
	return e, nil
}

// freeURL returns an http URL on a loopback port that was free a moment ago.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

// Endpoints returns the client URLs, for clientv3.Config.Endpoints.
func (m *Etcd) Endpoints() []string { return m.endpoints }

// Close stops etcd and waits for it to exit. It is idempotent.
func (m *Etcd) Close() { m.e.Close() }

// Stop stops etcd and waits for it to exit, like Close; [Etcd.Resume]
// starts it again. etcd closes its listeners at once, lets the calls and
// streams its clients have open run for up to its request timeout (about 5
// s), then cuts them.
func (m *Etcd) Stop() { m.e.Close() }

// Resume starts a stopped etcd again on the same ports with the same data:
// keys and leases survive (etcd renews every lease's TTL when it comes back).
func (m *Etcd) Resume() error {
	e, err := startEtcd(m.cfg)
	if err != nil {
		return err
	}
	m.e = e
	return nil
}
