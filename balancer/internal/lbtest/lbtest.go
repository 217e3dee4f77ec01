package lbtest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/balancer/internal/lb"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/wait"
	gkresolver "github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

// Backend is a loopback echo server (grpckittest's) with a controllable
// service time and failure switch. They live here rather than in the kit's
// Faults because a balancer test may run them on its own clock.
type Backend struct {
	*grpckittest.Server
	// Delay is the service time in nanoseconds added to every call.
	Delay atomic.Int64
	// Clock, when set, makes Delay pass on that clock instead of in real
	// time: every call advances it by Delay and returns at once.
	Clock atomic.Pointer[Clock]
	// Fail makes every call fail with Unavailable.
	Fail atomic.Bool
	// Served counts the calls that reached the server.
	Served atomic.Int64
}

func (b *Backend) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	b.Served.Add(1)
	if c := b.Clock.Load(); c != nil {
		c.Advance(time.Duration(b.Delay.Load()))
	} else if d := b.Delay.Load(); d > 0 {
		t := time.NewTimer(time.Duration(d))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if b.Fail.Load() {
		return nil, status.Error(codes.Unavailable, "lbtest: failing")
	}
	return h(ctx, req)
}

// Start starts n backends on 127.0.0.1.
func Start(tb testing.TB, n int) []*Backend {
	tb.Helper()
	bs := make([]*Backend, n)
	for i := range bs {
		b := &Backend{}
		b.Server = grpckittest.NewServer(tb, new(grpckittest.Backend).Register, grpckit.WithAccessLog(false),
			server.WithUnaryInterceptor(server.SlotUser, b.intercept))
		bs[i] = b
	}
	return bs
}

// Endpoints returns the backends as grpckit endpoints with the given weights
// (missing weights are 0, the default).
func Endpoints(bs []*Backend, weights ...uint32) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, len(bs))
	for i, b := range bs {
		e := gkresolver.Endpoint{Addr: b.Addr}
		if i < len(weights) {
			e.Weight = weights[i]
		}
		eps[i] = gkresolver.ToGRPC(e)
	}
	return eps
}

// Clock is a manual lb.Clock for a balancer builder a test registers: it
// stands still unless the test, or a Backend it was given to, advances it.
// A balancer on it measures the latencies the test chose, not the machine's:
// none while it stands still, and for a call that no other call overlaps,
// exactly the Delay of the Backend that served it.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock reading one hour (zero is no valid time for the
// balancers).
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(int64(time.Hour))
	return c
}

// Now reads the clock; it is the lb.Clock.
func (c *Clock) Now() int64 { return c.ns.Load() }

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var schemes atomic.Int64

// Client is a client whose endpoints come from a manual resolver.
type Client struct {
	*client.Conn
	R      *manual.Resolver
	Target string
}

// Dial builds a client for balancer name with the service config's balancer
// config cfg ("" for none) over eps, and closes it when the test ends.
func Dial(tb testing.TB, name, cfg string, eps []resolver.Endpoint, opts ...client.Option) *Client {
	tb.Helper()
	scheme := fmt.Sprintf("lbtest%d", schemes.Add(1))
	r := manual.NewBuilderWithScheme(scheme)
	r.InitialState(resolver.State{Endpoints: eps})
	target := scheme + ":///x"
	dial := []grpc.DialOption{grpc.WithResolvers(r)}
	if cfg != "" {
		dial = append(dial, grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, name, cfg)))
	}
	all := append([]client.Option{grpckit.WithAccessLog(false), client.WithBalancer(name), client.WithDialOptions(dial...)}, opts...)
	conn := grpckittest.Dial(tb, target, all...)
	conn.Connect()
	return &Client{Conn: conn, R: r, Target: target}
}

// Balancer returns the live grpckit balancer of c, if there is one.
func (c *Client) Balancer() (lb.Info, bool) {
	for _, in := range lb.Live() {
		if in.Target == c.Target {
			return in, true
		}
	}
	return lb.Info{}, false
}

// Endpoint returns the statistics of addr in c's balancer.
func (c *Client) Endpoint(addr string) *lb.Endpoint {
	in, _ := c.Balancer()
	for _, e := range in.Subset {
		if e.Addr == addr {
			return e
		}
	}
	return nil
}

// WaitReady waits until n endpoints of c's grpckit balancer are READY. An
// endpoint is READY a moment before the balancer publishes the picker that
// holds it: a test that needs calls to reach it waits for one.
func (c *Client) WaitReady(tb testing.TB, n int) {
	tb.Helper()
	wait.For(tb, 10*time.Second, fmt.Sprintf("%d ready endpoints", n), func() bool {
		in, ok := c.Balancer()
		if !ok {
			return false
		}
		ready := 0
		for _, e := range in.Subset {
			if e.State().String() == "READY" {
				ready++
			}
		}
		return ready >= n
	})
}

// Served returns each backend's Served count.
func Served(bs []*Backend) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.Served.Load()
	}
	return out
}
