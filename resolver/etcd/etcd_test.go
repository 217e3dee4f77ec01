package etcd_test

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/etcdtest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ server.Registrar = (*etcd.Registrar)(nil)

const (
	svc = "addsvc"
	ttl = 2 * time.Second
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// exampleEtcd starts the embedded etcd the examples run against and returns
// its client URLs and a function that stops it.
func exampleEtcd() (endpoints []string, stop func()) {
	dir, err := os.MkdirTemp("", "etcd-example-")
	if err != nil {
		log.Fatal(err)
	}
	e, err := etcdtest.StartEmbeddedEtcd(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		log.Fatal(err)
	}
	return e.Endpoints(), func() {
		e.Stop()
		_ = os.RemoveAll(dir)
	}
}

var fastBackoff = etcd.WithBackoff(resolver.Backoff{Min: 20 * time.Millisecond, Max: 300 * time.Millisecond})

// fixture is an etcd, a client of it, and a resolver builder on it.
type fixture struct {
	etcd    *etcdtest.TestEtcd
	cli     *clientv3.Client
	builder *resolver.Builder
	reg     *prometheus.Registry
}

// newFixture starts the fixture; opts come after its builder options, and
// so override them.
func newFixture(t testing.TB, opts ...etcd.BuilderOption) *fixture {
	t.Helper()
	e := etcdtest.StartTestEtcd(t)
	f := &fixture{etcd: e, cli: e.Client(t), reg: prometheus.NewRegistry()}
	b, err := etcd.NewBuilder(f.cli, append([]etcd.BuilderOption{etcd.WithPrefix(e.Prefix), etcd.WithLogger(quiet), fastBackoff,
		etcd.WithProgressInterval(200 * time.Millisecond), etcd.WithRequestTimeout(time.Second),
		etcd.WithResolverOptions(resolver.WithRegisterer(f.reg))}, opts...)...)
	if err != nil {
		t.Fatalf("NewBuilder: %v", err)
	}
	f.builder = b
	return f
}

// registrar returns a registrar for svc on cli (f.cli when nil).
func (f *fixture) registrar(t testing.TB, cli *clientv3.Client, opts ...etcd.RegistrarOption) *etcd.Registrar {
	t.Helper()
	if cli == nil {
		cli = f.cli
	}
	opts = append([]etcd.RegistrarOption{etcd.WithPrefix(f.etcd.Prefix), etcd.WithTTL(ttl), etcd.WithLogger(quiet), fastBackoff}, opts...)
	r, err := etcd.NewRegistrar(cli, svc, opts...)
	if err != nil {
		t.Fatalf("NewRegistrar: %v", err)
	}
	return r
}

// instance is an echo server and its backend, which counts its calls.
type instance struct {
	Addr   string
	Server *server.Server
	Echo   *grpckittest.Backend
}

// serve starts an echo server registered through r.
func serve(t testing.TB, r *etcd.Registrar) *instance {
	t.Helper()
	b := &grpckittest.Backend{}
	// The drain delay covers the deregistration's way through etcd, the
	// resolver and the balancer, and a quiet window, on a loaded machine.
	srv := grpckittest.NewServer(t, b.Register, server.WithRegistrar(r), server.WithDrainDelay(3*time.Second), grpckit.WithLogger(quiet))
	return &instance{Addr: srv.Addr, Server: srv.Server, Echo: b}
}

func (f *fixture) dial(t testing.TB, opts ...client.Option) *client.Conn {
	t.Helper()
	return grpckittest.Dial(t, "etcd:///"+svc, append([]client.Option{grpckit.WithLogger(quiet),
		client.WithDialOptions(grpc.WithResolvers(f.builder))}, opts...)...)
}

// keys returns how many keys the service has in etcd.
func (f *fixture) keys(t testing.TB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := f.cli.Get(ctx, f.etcd.Prefix+svc+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return -1
	}
	return int(resp.Count)
}

// waitFor polls cond every 10ms until it holds or d passes.

// load runs calls on conn from n goroutines until stop is called, which
// returns how many calls were made and the failures.
func load(conn *client.Conn, n int) (stop func() (calls int64, failed []error)) {
	ec := echov1.NewEchoServiceClient(conn)
	var (
		done  = make(chan struct{})
		wg    sync.WaitGroup
		calls atomic.Int64
		mu    sync.Mutex
		errs  []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
				cancel()
				calls.Add(1)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var once sync.Once
	return func() (int64, []error) {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
		mu.Lock()
		defer mu.Unlock()
		return calls.Load(), errs
	}
}

// gotCalls reports a function that tells whether in received calls since it
// was made.
func gotCalls(in *instance) func() bool {
	base := in.Echo.Faults.Calls()
	return func() bool { return in.Echo.Faults.Calls() > base }
}

// quietFor reports whether in received no call for d.
func quietFor(in *instance, d time.Duration) bool {
	before := in.Echo.Faults.Calls()
	time.Sleep(d)
	return in.Echo.Faults.Calls() == before
}

func TestSpreadJoinAndLeave(t *testing.T) {
	f := newFixture(t)
	var ins []*instance
	for range 3 {
		ins = append(ins, serve(t, f.registrar(t, nil)))
	}
	wait.For(t, 5*time.Second, "three servers registered", func() bool { return f.keys(t) == 3 })
	conn := f.dial(t)
	stop := load(conn, 4)
	defer func() { stop() }()
	for _, in := range ins {
		wait.For(t, 10*time.Second, "server "+in.Addr+" gets calls", gotCalls(in))
	}

	outer := t
	t.Run("join", func(t *testing.T) {
		start := time.Now()
		in := serve(outer, f.registrar(outer, nil)) // lives until the end of the test
		wait.For(t, 10*time.Second, "fourth server gets calls", gotCalls(in))
		t.Logf("fourth server got its first call after %v", time.Since(start))
		ins = append(ins, in)
	})

	t.Run("leave", func(t *testing.T) {
		stopAll := stop
		_, errsBefore := stopAll()
		if len(errsBefore) != 0 {
			t.Fatalf("failed calls before the shutdown: got %d (first %v), want 0", len(errsBefore), errsBefore[0])
		}
		stop = load(conn, 4)
		leaving := ins[1]
		shutdownDone := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			shutdownDone <- leaving.Server.Shutdown(ctx)
		}()
		// Deregistered: the key is gone. Then, while the server still drains,
		// the client must stop calling it.
		wait.For(t, 5*time.Second, "key deleted", func() bool { return f.keys(t) == 3 })
		wait.For(t, 5*time.Second, "leaving server stops receiving calls", func() bool { return quietFor(leaving, 100*time.Millisecond) })
		select {
		case err := <-shutdownDone:
			t.Fatalf("Shutdown returned (%v) before the client moved away; the drain delay is too short for the resolver", err)
		default:
		}
		if err := <-shutdownDone; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		last := leaving.Echo.Faults.Calls()
		calls, errs := stop()
		stop = func() (int64, []error) { return 0, nil }
		if len(errs) != 0 {
			t.Fatalf("failed calls during the shutdown: got %d of %d (first %v), want 0", len(errs), calls, errs[0])
		}
		if got := leaving.Echo.Faults.Calls(); got != last {
			t.Errorf("calls on the deregistered server after its shutdown: got %d, want %d", got, last)
		}
		for _, in := range []*instance{ins[0], ins[2], ins[3]} {
			if in.Echo.Faults.Calls() == 0 {
				t.Errorf("server %s got no calls, want some", in.Addr)
			}
		}
	})
}

func TestEtcdOutage(t *testing.T) {
	f := newFixture(t)
	f.etcd.RequireEmbedded(t)
	ra := f.registrar(t, nil)
	a := serve(t, ra)
	b := serve(t, f.registrar(t, nil))
	other, err := etcd.NewRegistrar(f.cli, "other", etcd.WithPrefix(f.etcd.Prefix), etcd.WithTTL(ttl), etcd.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Register(context.Background(), "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "two servers registered", func() bool { return f.keys(t) == 2 })
	conn := f.dial(t)
	stop := load(conn, 4)
	defer func() { stop() }()
	wait.For(t, 10*time.Second, "both servers get calls", func() bool { return a.Echo.Faults.Calls() > 0 && b.Echo.Faults.Calls() > 0 })

	f.etcd.Stop(t)
	// Deregistering while etcd is down gives up after RevokeTimeout, so a
	// server's shutdown is not held up (the lease expires on its own).
	start := time.Now()
	err = other.Deregister(grpckittest.Context(t, 30*time.Second))
	if d := time.Since(start); err == nil || d > etcd.RevokeTimeout+time.Second {
		t.Errorf("Deregister with etcd down: %v after %v, want an error within %v", err, d, etcd.RevokeTimeout)
	} // takes ~5s: embed drains open watch streams first
	// Longer than the TTL, so leases are lost on the registrars' side.
	deadline := time.Now().Add(ttl + time.Second)
	for time.Now().Before(deadline) {
		wait.For(t, 5*time.Second, "a still gets calls", gotCalls(a))
		wait.For(t, 5*time.Second, "b still gets calls", gotCalls(b))
	}
	if got := metricValue(t, f.reg, "grpckit_resolver_endpoints"); got != 2 {
		t.Errorf("endpoints during the outage: got %v, want 2", got)
	}
	// The admin page's view of the registration: lost, with the reason.
	wait.For(t, 10*time.Second, "the registration reported lost", func() bool {
		st := ra.Status()
		return !st.Registered && st.Error != ""
	})
	if st := other.Status(); st.Registered || st.Error != "deregistered" {
		t.Errorf("deregistered registrar's Status: got %+v, want not registered, error \"deregistered\"", st)
	}
	if got := metricValue(t, f.reg, "grpckit_resolver_staleness_seconds"); got <= 0 {
		t.Errorf("staleness during the outage: got %v, want > 0", got)
	}
	calls, errs := stop()
	stop = func() (int64, []error) { return 0, nil }
	if len(errs) != 0 {
		t.Fatalf("failed calls while etcd was down: got %d of %d (first %v), want 0", len(errs), calls, errs[0])
	}

	f.etcd.Restart(t)
	d := wait.For(t, 10*time.Second, "registrations back", func() bool { return f.keys(t) == 2 })
	if d > ttl {
		t.Errorf("registrations back after %v, want ≤ TTL %v", d, ttl)
	}
	wait.For(t, 10*time.Second, "the registration reported repaired", func() bool {
		st := ra.Status()
		return st.Registered && st.Repairs >= 1 && st.Error == ""
	})
	if st := ra.Status(); st.Registry != "etcd" || st.Key != ra.Key() || st.Address != a.Addr {
		t.Errorf("Status: got %+v, want registry etcd, key %s, address %s", st, ra.Key(), a.Addr)
	}
	c := serve(t, f.registrar(t, nil))
	stop = load(conn, 2)
	wait.For(t, 5*time.Second, "new server discovered after the restart", gotCalls(c))
	wait.For(t, 5*time.Second, "staleness back to 0", func() bool {
		return metricValue(t, f.reg, "grpckit_resolver_staleness_seconds") == 0
	})
	// The old leases, revived by the restart, expire without taking the
	// re-put keys with them.
	time.Sleep(ttl + 500*time.Millisecond)
	if got := f.keys(t); got != 3 {
		t.Errorf("keys after the old leases expired: got %d, want 3", got)
	}
	if _, errs := stop(); len(errs) != 0 {
		t.Errorf("failed calls after the restart: got %d (first %v), want 0", len(errs), errs[0])
	}
	stop = func() (int64, []error) { return 0, nil }
}

func TestKilledServerDisappears(t *testing.T) {
	f := newFixture(t)
	own := f.etcd.Client(t)
	a := serve(t, f.registrar(t, nil))
	killed := serve(t, f.registrar(t, own))
	wait.For(t, 5*time.Second, "two servers registered", func() bool { return f.keys(t) == 2 })
	conn := f.dial(t)
	stop := load(conn, 2)
	defer stop()
	wait.For(t, 10*time.Second, "both servers get calls", func() bool { return a.Echo.Faults.Calls() > 0 && killed.Echo.Faults.Calls() > 0 })

	// The registrar loses its etcd client: no keep-alive, no revoke, as if
	// its process had died. The gRPC server keeps serving, so only the
	// resolver can move the client away.
	_ = own.Close()
	d := wait.For(t, ttl+3*time.Second, "key expired", func() bool { return f.keys(t) == 1 })
	wait.For(t, 10*time.Second, "client stops calling the dead server", func() bool { return quietFor(killed, 100*time.Millisecond) })
	// etcd expires a lease within its TTL of the last keep-alive and revokes
	// it in a loop of its own: 2s of slack for that loop and a loaded machine.
	if d > ttl+2*time.Second {
		t.Errorf("key gone after %v, want ≤ TTL %v (+2s)", d, ttl)
	}
	wait.For(t, 10*time.Second, "a still gets calls", gotCalls(a))
}

func TestDeletedKeyIsPutBack(t *testing.T) {
	f := newFixture(t)
	r := f.registrar(t, nil, etcd.WithInstanceID("one"), etcd.WithWeight(7))
	in := serve(t, r)
	if want := f.etcd.Prefix + svc + "/one"; r.Key() != want {
		t.Fatalf("Key() = %q, want %q", r.Key(), want)
	}
	wait.For(t, 5*time.Second, "registered", func() bool { return f.keys(t) == 1 })
	for i := range 3 {
		ctx := grpckittest.Context(t, 2*time.Second)
		if _, err := f.cli.Delete(ctx, r.Key()); err != nil {
			t.Fatalf("delete: %v", err)
		}
		wait.For(t, 2*time.Second, "key put back", func() bool { return f.keys(t) == 1 })
		resp, err := f.cli.Get(ctx, r.Key())
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("round %d: get: %v, %d keys, want 1", i, err, len(resp.Kvs))
		}
		want := `{"address":"` + in.Addr + `","weight":7}`
		if got := string(resp.Kvs[0].Value); got != want {
			t.Errorf("round %d: value = %s, want %s", i, got, want)
		}
		if resp.Kvs[0].Lease == 0 {
			t.Errorf("round %d: key put back without a lease", i)
		}
	}
	// Deregister deletes it for good.
	if err := r.Deregister(grpckittest.Context(t, 2*time.Second)); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if got := f.keys(t); got != 0 {
		t.Errorf("keys after Deregister: got %d, want 0", got)
	}
	if err := r.Deregister(grpckittest.Context(t, time.Second)); err != nil {
		t.Errorf("second Deregister: %v, want nil", err)
	}
}

func TestClientStartsWhileEtcdIsDown(t *testing.T) {
	f := newFixture(t)
	f.etcd.RequireEmbedded(t)
	f.etcd.Stop(t)
	// The default client, breaker included: calls that fail for want of
	// endpoints must not hold later calls off once etcd is back.
	conn := f.dial(t) // must not fail or block
	ec := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 3*time.Second)
	_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	if got := status.Code(err); got != codes.Unavailable {
		t.Fatalf("call while etcd is down: got %v (%v), want Unavailable", got, err)
	}
	if !strings.Contains(err.Error(), "etcd") {
		t.Errorf("error %q does not say etcd is the problem", err)
	}

	f.etcd.Restart(t)
	in := serve(t, f.registrar(t, nil))
	wait.For(t, 10*time.Second, "calls succeed", func() bool {
		_, err := ec.Echo(grpckittest.Context(t, time.Second), &echov1.EchoRequest{Message: "hi"})
		return err == nil
	})
	if in.Echo.Faults.Calls() == 0 {
		t.Errorf("calls on the server: got 0, want > 0")
	}
}

func TestMalformedValuesAreSkipped(t *testing.T) {
	f := newFixture(t)
	good := serve(t, f.registrar(t, nil, etcd.WithInstanceID("good")))
	wait.For(t, 5*time.Second, "registered", func() bool { return f.keys(t) == 1 })
	ctx := grpckittest.Context(t, 5*time.Second)
	prefix := f.etcd.Prefix + svc + "/"
	bad := map[string]string{
		"garbage":  "not json",
		"noaddr":   `{"weight":3}`,
		"badport":  `{"address":"127.0.0.1:http"}`,
		"trailing": `{"address":"127.0.0.1:1"} {}`,
	}
	for k, v := range bad { // before the client starts: the initial read
		if _, err := f.cli.Put(ctx, prefix+k, v); err != nil {
			t.Fatal(err)
		}
	}
	conn := f.dial(t)
	ec := echov1.NewEchoServiceClient(conn)
	wait.For(t, 5*time.Second, "good endpoint serves", func() bool {
		_, err := ec.Echo(grpckittest.Context(t, time.Second), &echov1.EchoRequest{Message: "hi"})
		return err == nil
	})
	// While watching: a bad value, and the good key overwritten with garbage.
	if _, err := f.cli.Put(ctx, prefix+"late", "{"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cli.Put(ctx, prefix+"good", "{broken"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "invalid entries counted", func() bool {
		return metricValue(t, f.reg, "grpckit_resolver_invalid_entries_total") >= float64(len(bad)+2)
	})
	base := good.Echo.Faults.Calls()
	for i := range 20 {
		if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatalf("call %d: %v, want success", i, err)
		}
	}
	if got := good.Echo.Faults.Calls() - base; got != 20 {
		t.Errorf("calls on the good server: got %d, want 20", got)
	}
	if got := metricValue(t, f.reg, "grpckit_resolver_endpoints"); got != 1 {
		t.Errorf("endpoints: got %v, want 1", got)
	}
}

func TestConstructorErrors(t *testing.T) {
	e := etcdtest.StartTestEtcd(t)
	cli := e.Client(t)
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"nil client builder", func() error { _, err := etcd.NewBuilder(nil); return err }},
		{"bad prefix", func() error { _, err := etcd.NewBuilder(cli, etcd.WithPrefix("x")); return err }},
		{"zero progress", func() error { _, err := etcd.NewBuilder(cli, etcd.WithProgressInterval(0)); return err }},
		{"nil client registrar", func() error { _, err := etcd.NewRegistrar(nil, svc); return err }},
		{"bad service", func() error { _, err := etcd.NewRegistrar(cli, "a/b"); return err }},
		{"short ttl", func() error { _, err := etcd.NewRegistrar(cli, svc, etcd.WithTTL(500*time.Millisecond)); return err }},
		{"fractional ttl", func() error { _, err := etcd.NewRegistrar(cli, svc, etcd.WithTTL(1500*time.Millisecond)); return err }},
		{"bad address", func() error { _, err := etcd.NewRegistrar(cli, svc, etcd.WithAddress("nohost")); return err }},
		{"bad id", func() error { _, err := etcd.NewRegistrar(cli, svc, etcd.WithInstanceID("a/b")); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
	t.Run("unspecified listener address", func(t *testing.T) {
		r, err := etcd.NewRegistrar(cli, svc)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Register(context.Background(), "[::]:8080"); !errors.Is(err, etcd.ErrBadOption) {
			t.Errorf("Register([::]:8080) = %v, want ErrBadOption", err)
		}
	})
}

// metricValue sums the samples of the metric name in reg.
func metricValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// stateCC is a resolver.ClientConn that keeps the last state.
type stateCC struct {
	grpcresolver.ClientConn
	mu    sync.Mutex
	state grpcresolver.State
}

func (c *stateCC) UpdateState(s grpcresolver.State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = s
	return nil
}
func (c *stateCC) ReportError(error) {}

func (c *stateCC) endpoints() []resolver.Endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []resolver.Endpoint
	for _, ep := range c.state.Endpoints {
		out = append(out, resolver.FromGRPC(ep))
	}
	return out
}

func TestAttributesReachTheClientConn(t *testing.T) {
	f := newFixture(t)
	md := map[string]string{"shard": "7"}
	in := serve(t, f.registrar(t, nil, etcd.WithWeight(30), etcd.WithZone("eu-1a"), etcd.WithVersion("1.4.2"), etcd.WithMetadata(md)))
	u, _ := url.Parse("etcd:///" + svc)
	cc := &stateCC{}
	r, err := f.builder.Build(grpcresolver.Target{URL: *u}, cc, grpcresolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := resolver.Endpoint{Addr: in.Addr, Weight: 30, Zone: "eu-1a", Version: "1.4.2", Metadata: md}
	wait.For(t, 5*time.Second, "endpoint with attributes", func() bool {
		eps := cc.endpoints()
		return len(eps) == 1 && eps[0].Equal(want)
	})
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if a := cc.state.Endpoints[0].Addresses[0].Attributes; a != nil {
		t.Errorf("address attributes = %v, want none (so that attribute changes do not reconnect)", a)
	}
}
