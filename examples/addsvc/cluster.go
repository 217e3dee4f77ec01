package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	"github.com/grpckit/grpckit/metrics"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

// Server-side latency: every call waits baseLatency, or slowLatency on a
// slowed server, so that the balancer has latencies to compare.
const (
	baseLatency = 2 * time.Millisecond
	slowLatency = 20 * time.Millisecond
)

// Fault modes of a slot.
const (
	normal int32 = iota
	slow
	failing
)

// slot is one of the demo's servers, s1, s2, ...; a rolling restart replaces
// the server in a slot with a new one on a new port.
type slot struct {
	name   string
	mode   atomic.Int32
	failed atomic.Int64 // calls failed on purpose (failing mode)

	srv    *server.Server
	addr   string
	reg    *etcd.Registrar
	served chan error
}

// cluster runs the servers, each registered in etcd.
type cluster struct {
	cli    *clientv3.Client
	sopts  []server.Option
	logger *slog.Logger

	slots      []*slot
	concatFail atomic.Bool // every server fails Concat

	mu     sync.Mutex
	byAddr map[string]int // every address a slot ever had
}

func newCluster(cli *clientv3.Client, n int, sopts []server.Option, logger *slog.Logger) *cluster {
	c := &cluster{cli: cli, sopts: sopts, logger: logger, byAddr: make(map[string]int)}
	for i := range n {
		c.slots = append(c.slots, &slot{name: fmt.Sprintf("s%d", i+1)})
	}
	return c
}

// start starts a server in slot i on a new loopback port; it registers in
// etcd once it serves.
func (c *cluster) start(i int) error {
	s := c.slots[i]
	reg, err := etcd.NewRegistrar(c.cli, "addsvc", etcd.WithLogger(c.logger))
	if err != nil {
		return err
	}
	srv, err := server.New(append(c.sopts, server.WithRegistrar(reg))...)
	if err != nil {
		return err
	}
	// The service's business metrics go on the server's registry, beside
	// its grpc_server_* series; the servers share one registry (see run),
	// so they count together, across restarts.
	m, err := addservice.NewMetrics(metrics.Prometheus(srv.Registry()))
	if err != nil {
		_ = srv.Close()
		return err
	}
	addsvcv1.RegisterAddServiceServer(srv, &faulty{svc: addservice.New(0, addservice.WithMetrics(m)), s: s, c: c})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	s.srv, s.addr, s.reg, s.served = srv, lis.Addr().String(), reg, served
	c.mu.Lock()
	c.byAddr[s.addr] = i
	c.mu.Unlock()
	return nil
}

// stop shuts the server in slot i down gracefully: it deregisters, turns
// NOT_SERVING, keeps serving for the drain delay, then stops once the calls
// in flight are done.
func (c *cluster) stop(ctx context.Context, i int) error {
	s := c.slots[i]
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		return fmt.Errorf("%s: shutdown: %w", s.name, err)
	}
	if err := <-s.served; !errors.Is(err, server.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", s.name, err)
	}
	s.srv = nil
	return nil
}

// slotOf returns the slot an address belongs or belonged to, or -1.
func (c *cluster) slotOf(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.byAddr[addr]; ok {
		return i
	}
	return -1
}

// registered returns how many servers are registered in etcd.
func (c *cluster) registered(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, etcd.DefaultPrefix+"addsvc/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Count, nil
}

// waitRegistered waits until n servers are registered in etcd.
func (c *cluster) waitRegistered(ctx context.Context, n int, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if got, err := c.registered(ctx); err == nil && got == int64(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d servers not registered in etcd: %w", n, ctx.Err())
		case <-tick.C:
		}
	}
}

// faulty is the add service with the slot's fault knob in front.
type faulty struct {
	addsvcv1.UnimplementedAddServiceServer
	svc *addservice.Service
	s   *slot
	c   *cluster
}

func (f *faulty) Sum(ctx context.Context, req *addsvcv1.SumRequest) (*addsvcv1.SumResponse, error) {
	if err := f.behave(ctx, false); err != nil {
		return nil, err
	}
	return f.svc.Sum(ctx, req)
}

func (f *faulty) Concat(ctx context.Context, req *addsvcv1.ConcatRequest) (*addsvcv1.ConcatResponse, error) {
	if err := f.behave(ctx, f.c.concatFail.Load()); err != nil {
		return nil, err
	}
	return f.svc.Concat(ctx, req)
}

// behave fails the call if the slot (or fail) says so, else waits the
// slot's latency.
func (f *faulty) behave(ctx context.Context, fail bool) error {
	mode := f.s.mode.Load()
	if fail || mode == failing {
		f.s.failed.Add(1)
		return status.Errorf(codes.Unavailable, "%s: failing (demo fault)", f.s.name)
	}
	d := baseLatency
	if mode == slow {
		d = slowLatency
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}
