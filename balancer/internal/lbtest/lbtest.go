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

	"github.com/grpckit/grpckit/balancer/internal/lb"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/internal/testsrv"
	gkresolver "github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

// Backend is a loopback echo server with a controllable service time and
// failure switch.
type Backend struct {
	*testsrv.Instance
	// Delay is the service time in nanoseconds added to every call.
	Delay atomic.Int64
	// Fail makes every call fail with Unavailable.
	Fail atomic.Bool
	// Served counts the calls that reached the server.
	Served atomic.Int64
}

func (b *Backend) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	b.Served.Add(1)
	if d := b.Delay.Load(); d > 0 {
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
		b.Instance = testsrv.Start(tb, server.WithAccessLog(false), server.WithUnaryInterceptor(server.SlotUser, b.intercept))
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
	all := append([]client.Option{client.WithInsecure(), client.WithAccessLog(false), client.WithBalancer(name), client.WithDialOptions(dial...)}, opts...)
	conn, err := client.New(target, all...)
	if err != nil {
		tb.Fatalf("client.New: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
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

// WaitFor polls cond every few milliseconds until it holds or d passes.
func WaitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		t := time.NewTimer(5 * time.Millisecond)
		<-t.C
	}
}

// WaitReady waits until n endpoints of c's grpckit balancer are READY.
func (c *Client) WaitReady(tb testing.TB, n int) {
	tb.Helper()
	WaitFor(tb, 10*time.Second, fmt.Sprintf("%d ready endpoints", n), func() bool {
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
