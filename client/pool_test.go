package client_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/grpckit/grpckit"
	gkbalancer "github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

// gatedServer is a server allowing two streams per connection whose Echo
// calls wait at a gate; it counts the calls in its handler and the
// connections open to it.
type gatedServer struct {
	*grpckittest.Server
	inHandler atomic.Int64
	conns     atomic.Int64
	gate      chan struct{}
}

const poolTestStreams = 2

func newGatedServer(t *testing.T) *gatedServer {
	t.Helper()
	g := &gatedServer{gate: make(chan struct{})}
	b := &grpckittest.Backend{Handler: func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		g.inHandler.Add(1)
		defer g.inHandler.Add(-1)
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}}
	g.Server = grpckittest.NewServer(t, b.Register, grpckit.WithAccessLog(false),
		server.WithMaxConcurrentStreams(poolTestStreams),
		server.WithServerOptions(grpc.StatsHandler(connCounter{&g.conns})))
	t.Cleanup(g.open) // before the server's own cleanup: let calls finish
	return g
}

func (g *gatedServer) open() {
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

// connCounter counts a server's open connections.
type connCounter struct{ n *atomic.Int64 }

func (c connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.n.Add(1)
	case *stats.ConnEnd:
		c.n.Add(-1)
	}
}
func (c connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}

// poolClient dials the servers through a resolver of its own scheme.
func poolClient(t *testing.T, scheme string, srvs []*gatedServer, opts ...client.Option) *client.Conn {
	t.Helper()
	src := &grpckittest.Source{}
	var eps []resolver.Endpoint
	for _, s := range srvs {
		eps = append(eps, resolver.Endpoint{Addr: s.Addr})
	}
	src.Replace(eps...)
	rb, err := resolver.NewBuilder(scheme, src)
	if err != nil {
		t.Fatal(err)
	}
	return grpckittest.Dial(t, scheme+":///echo", append([]client.Option{grpckit.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(rb))}, opts...)...)
}

// endpoints returns the balancer's view of target's endpoints, by address.
func endpoints(target string) map[string]gkbalancer.EndpointState {
	out := map[string]gkbalancer.EndpointState{}
	for _, st := range gkbalancer.Snapshot() {
		if st.Target == target {
			for _, e := range st.Endpoints {
				out[e.Addr] = e
			}
		}
	}
	return out
}

// calls starts n Echo calls on conn and returns a function that waits for
// them and returns their errors.
func startCalls(t *testing.T, conn *client.Conn, n int) func() []error {
	t.Helper()
	ctx := grpckittest.Context(t, time.Minute)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{Message: fmt.Sprint(i)})
		})
	}
	return func() []error { wg.Wait(); return errs }
}

func checkErrs(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

// startPicked starts n Echo calls on conn one at a time, each once the
// balancer has picked the one before (target's in-flight count over all
// endpoints has grown by one), and returns a function that waits for them.
// Picks made one at a time make p2c's spread exact: it takes the endpoint
// with fewer calls in flight, so two endpoints get n/2 each. Calls started
// together could both see equal loads and take the same endpoint.
func startPicked(t *testing.T, conn *client.Conn, target string, n int) func() []error {
	t.Helper()
	var waits []func() []error
	for i := 1; i <= n; i++ {
		waits = append(waits, startCalls(t, conn, 1))
		wait.For(t, 30*time.Second, fmt.Sprintf("call %d picked", i), func() bool {
			var inFlight int64
			for _, e := range endpoints(target) {
				inFlight += e.InFlight
			}
			return inFlight == int64(i)
		})
	}
	return func() []error {
		var errs []error
		for _, w := range waits {
			errs = append(errs, w()...)
		}
		return errs
	}
}

// Two servers allowing two streams per connection, eight calls held in the
// handlers: with one connection per endpoint (gRPC's way) four run and four
// wait in the client for a stream; with two connections per endpoint all
// eight run. The balancer spreads the calls by endpoint either way, and
// counts each endpoint's calls over all its connections.
func TestConnPoolLiftsStreamLimit(t *testing.T) {
	t.Run("without pool calls queue", func(t *testing.T) {
		srvs := []*gatedServer{newGatedServer(t), newGatedServer(t)}
		conn := poolClient(t, "poolnone", srvs)
		conn.Connect()
		wait.For(t, 30*time.Second, "both endpoints ready", func() bool {
			eps := endpoints("poolnone:///echo")
			return len(eps) == 2 && eps[srvs[0].Addr].Conns == 1 && eps[srvs[1].Addr].Conns == 1
		})
		waitCalls := startPicked(t, conn, "poolnone:///echo", 8)
		wait.For(t, 30*time.Second, "4 calls in the handlers", func() bool {
			return srvs[0].inHandler.Load()+srvs[1].inHandler.Load() == 4
		})
		// The four others are waiting for a stream: HTTP/2 lets no more
		// than two open on the single connection to each server.
		for i, s := range srvs {
			if got := s.inHandler.Load(); got != poolTestStreams {
				t.Errorf("server %d: %d calls in the handler, want %d", i, got, poolTestStreams)
			}
			if got := s.conns.Load(); got != 1 {
				t.Errorf("server %d: %d connections, want 1", i, got)
			}
		}
		for addr, e := range endpoints("poolnone:///echo") {
			if e.Conns != 1 || e.InFlight != 4 {
				t.Errorf("%s: %d connections, %d calls in flight; want 1 and 4", addr, e.Conns, e.InFlight)
			}
		}
		srvs[0].open()
		srvs[1].open()
		checkErrs(t, waitCalls())
	})

	t.Run("with pool calls run", func(t *testing.T) {
		srvs := []*gatedServer{newGatedServer(t), newGatedServer(t)}
		conn := poolClient(t, "pooltwo", srvs, client.WithConnPool(2, 2))
		conn.Connect() // out of idle: a channel connects at its first call otherwise
		wait.For(t, 30*time.Second, "two ready connections per endpoint", func() bool {
			eps := endpoints("pooltwo:///echo")
			return len(eps) == 2 && eps[srvs[0].Addr].Conns == 2 && eps[srvs[1].Addr].Conns == 2
		})
		waitCalls := startPicked(t, conn, "pooltwo:///echo", 8)
		wait.For(t, 30*time.Second, "8 calls in the handlers", func() bool {
			return srvs[0].inHandler.Load()+srvs[1].inHandler.Load() == 8
		})
		for i, s := range srvs {
			if got := s.inHandler.Load(); got != 2*poolTestStreams {
				t.Errorf("server %d: %d calls in the handler, want %d", i, got, 2*poolTestStreams)
			}
			if got := s.conns.Load(); got != 2 {
				t.Errorf("server %d: %d connections, want 2", i, got)
			}
		}
		eps := endpoints("pooltwo:///echo")
		if len(eps) != 2 {
			t.Fatalf("balancer lists %d endpoints, want 2 (one per address, not per connection)", len(eps))
		}
		for addr, e := range eps {
			if e.Conns != 2 || e.InFlight != 4 {
				t.Errorf("%s: %d connections, %d calls in flight; want 2 and 4", addr, e.Conns, e.InFlight)
			}
		}
		srvs[0].open()
		srvs[1].open()
		checkErrs(t, waitCalls())
		wait.For(t, 30*time.Second, "calls counted per endpoint", func() bool {
			eps := endpoints("pooltwo:///echo")
			return eps[srvs[0].Addr].Calls == 4 && eps[srvs[1].Addr].Calls == 4 &&
				eps[srvs[0].Addr].InFlight == 0 && eps[srvs[1].Addr].InFlight == 0
		})
	})
}

// A pool grows a connection at a time as calls fill the ones it has, up to
// its maximum, then queues on the least busy one. Calls start one at a time,
// each once the one before is in the handler, so the growth is exact: the
// second call on a connection (of two streams) adds the next connection,
// and the call after it waits for that connection rather than queue.
func TestConnPoolGrows(t *testing.T) {
	srv := newGatedServer(t)
	conn := poolClient(t, "poolgrow", []*gatedServer{srv}, client.WithConnPool(1, 4))
	ctx := grpckittest.Context(t, time.Minute)
	if err := conn.WaitForReady(ctx); err != nil {
		t.Fatal(err)
	}
	var waits []func() []error
	for i := 1; i <= 8; i++ {
		waits = append(waits, startCalls(t, conn, 1))
		wait.For(t, 30*time.Second, fmt.Sprintf("call %d in the handler", i), func() bool { return srv.inHandler.Load() == int64(i) })
	}
	if got := srv.conns.Load(); got != 4 {
		t.Errorf("8 calls of 2 streams per connection: %d connections, want 4", got)
	}
	// The pool is full: a ninth call queues on a connection.
	waits = append(waits, startCalls(t, conn, 1))
	wait.For(t, 30*time.Second, "the ninth call picked", func() bool {
		return endpoints("poolgrow:///echo")[srv.Addr].InFlight == 9
	})
	if got := srv.conns.Load(); got != 4 {
		t.Errorf("pool at its maximum: %d connections, want 4", got)
	}
	if got := srv.inHandler.Load(); got != 8 {
		t.Errorf("%d calls in the handler, want 8 (4 connections × 2 streams)", got)
	}
	if e := endpoints("poolgrow:///echo")[srv.Addr]; e.Conns != 4 {
		t.Errorf("balancer: %d ready connections, want 4", e.Conns)
	}
	srv.open()
	for _, w := range waits {
		checkErrs(t, w())
	}
}

// Many calls at once on a growing pool: picks race each other and the
// connections being added. Every call must get a connection (none left
// waiting for a picker that never comes), the pool stays within its
// maximum, and every call succeeds.
func TestConnPoolConcurrentCalls(t *testing.T) {
	srv := newGatedServer(t)
	conn := poolClient(t, "poolmany", []*gatedServer{srv}, client.WithConnPool(1, 4))
	ctx := grpckittest.Context(t, time.Minute)
	if err := conn.WaitForReady(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 50
	waitCalls := startCalls(t, conn, n)
	wait.For(t, 30*time.Second, "every call picked", func() bool {
		return endpoints("poolmany:///echo")[srv.Addr].InFlight == n
	})
	if got := srv.conns.Load(); got < 1 || got > 4 {
		t.Errorf("server: %d connections, want 1 to 4", got)
	}
	srv.open()
	checkErrs(t, waitCalls())
}

func TestConnPoolOptions(t *testing.T) {
	for _, tc := range []struct {
		conns, max int
	}{{0, 1}, {2, 1}, {1, 65}} {
		if _, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure(), client.WithConnPool(tc.conns, tc.max)); err == nil {
			t.Errorf("WithConnPool(%d, %d): no error", tc.conns, tc.max)
		}
	}
	if _, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure(), client.WithBalancer("round_robin"), client.WithConnPool(2, 2)); err == nil {
		t.Error("WithConnPool with round_robin: no error")
	}
}
