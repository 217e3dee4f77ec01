package consul_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/consultest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/resolver/consul"
	"github.com/grpckit/grpckit/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one test's Consul: the fake, or the real agent named by
// GRPCKIT_CONSUL_ADDR, and a service name no other test uses.
type env struct {
	agent  *consultest.Agent
	client *api.Client
	svc    string
	// copts are extra client options for dial.
	copts []client.Option
}

func newEnv(t *testing.T) *env {
	t.Helper()
	a := consultest.StartAgent(t)
	name := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	return &env{agent: a, client: a.Client(t), svc: fmt.Sprintf("grpckit-%s-%06d", name, rand.IntN(1e6))}
}

// startServer starts an echo server registered with c (the agent's client
// by default), and returns its backend, which counts its calls.
func (e *env) startServer(t *testing.T, c *api.Client, opts ...consul.RegistrarOption) (*grpckittest.Backend, *consul.Registrar) {
	t.Helper()
	if c == nil {
		c = e.client
	}
	reg, err := consul.NewRegistrar(c, e.svc, append([]consul.RegistrarOption{
		consul.WithTTL(600 * time.Millisecond),
		consul.WithBackoff(resolver.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}),
	}, opts...)...)
	if err != nil {
		t.Fatalf("NewRegistrar: %v", err)
	}
	b := &grpckittest.Backend{}
	grpckittest.NewServer(t, b.Register, server.WithRegistrar(reg), server.WithDrainDelay(0), grpckit.WithAccessLog(false))
	return b, reg
}

// dial returns an echo client for consul:///svc through c.
func (e *env) dial(t *testing.T, c *api.Client, opts ...consul.BuilderOption) echov1.EchoServiceClient {
	t.Helper()
	if c == nil {
		c = e.client
	}
	b, err := consul.NewBuilder(c, append([]consul.BuilderOption{
		consul.WithWaitTime(time.Minute),
		consul.WithBackoff(resolver.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}),
	}, opts...)...)
	if err != nil {
		t.Fatalf("NewBuilder: %v", err)
	}
	conn := grpckittest.Dial(t, "consul:///"+e.svc, append([]client.Option{grpckit.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(b))}, e.copts...)...)
	return echov1.NewEchoServiceClient(conn)
}

// passing returns the IDs of the service's passing instances, as the agent
// reports them.
func (e *env) passing(t *testing.T) map[string]bool {
	t.Helper()
	entries, _, err := e.client.Health().Service(e.svc, "", true, nil)
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	ids := map[string]bool{}
	for _, en := range entries {
		ids[en.Service.ID] = true
	}
	return ids
}

// calls makes n calls and returns how many failed.
func calls(t *testing.T, c echov1.EchoServiceClient, n int) int {
	t.Helper()
	failed := 0
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			failed++
		}
		cancel()
	}
	return failed
}

func callCounts(ins []*grpckittest.Backend) []int64 {
	out := make([]int64, len(ins))
	for i, in := range ins {
		out[i] = in.Faults.Calls()
	}
	return out
}

// allServe waits until every instance receives calls from c.
func allServe(t *testing.T, c echov1.EchoServiceClient, ins []*grpckittest.Backend) {
	t.Helper()
	base := callCounts(ins)
	wait.For(t, 10*time.Second, "every instance to receive calls", func() bool {
		calls(t, c, 10)
		for i, n := range callCounts(ins) {
			if n == base[i] {
				return false
			}
		}
		return true
	})
}

func TestThreeInstancesAllUsed(t *testing.T) {
	e := newEnv(t)
	// Round robin makes the expected split exact; the default p2c spreads
	// by latency.
	e.copts = []client.Option{client.WithBalancer("round_robin")}
	var ins []*grpckittest.Backend
	for range 3 {
		// A TTL of 3s: a registrar stalled on a loaded machine must not let
		// its check flap, which would change the picker mid-count.
		in, _ := e.startServer(t, nil, consul.WithTTL(3*time.Second))
		ins = append(ins, in)
	}
	wait.For(t, 5*time.Second, "3 passing instances", func() bool { return len(e.passing(t)) == 3 })
	c := e.dial(t, nil)
	allServe(t, c, ins) // every connection is ready
	base := callCounts(ins)
	if failed := calls(t, c, 300); failed != 0 {
		t.Fatalf("got %d failed calls, want 0", failed)
	}
	for i, n := range callCounts(ins) {
		if got := n - base[i]; got != 100 {
			t.Errorf("instance %d: got %d calls, want 100 (round robin over 3)", i, got)
		}
	}
}

func TestCriticalInstanceStopsReceivingCalls(t *testing.T) {
	e := newEnv(t)
	// Round robin: the test asserts both healthy instances keep serving,
	// which p2c, free to favour the faster one, does not promise.
	e.copts = []client.Option{client.WithBalancer("round_robin")}
	var sick atomic.Bool
	var ins []*grpckittest.Backend
	var regs []*consul.Registrar
	for i := range 3 {
		var opts []consul.RegistrarOption
		if i == 0 {
			opts = append(opts, consul.WithHealthFunc(func(context.Context) error {
				if sick.Load() {
					return errors.New("test: sick")
				}
				return nil
			}))
		}
		in, reg := e.startServer(t, nil, opts...)
		ins, regs = append(ins, in), append(regs, reg)
	}
	// Dial once registered: calls failing on an empty service would open
	// the client's circuit breaker.
	wait.For(t, 5*time.Second, "3 passing instances", func() bool { return len(e.passing(t)) == 3 })
	// The blocking query waits a minute, so a change seen sooner came from
	// the query waking up, within one round.
	c := e.dial(t, nil, consul.WithWaitTime(time.Minute))
	allServe(t, c, ins)

	sick.Store(true)
	id := regs[0].ServiceID()
	wait.For(t, 5*time.Second, "the agent to report the instance critical", func() bool { return !e.passing(t)[id] })
	wait.For(t, 5*time.Second, "calls to avoid the critical instance", func() bool {
		before := ins[0].Faults.Calls()
		calls(t, c, 20)
		return ins[0].Faults.Calls() == before
	})
	before := callCounts(ins)
	if failed := calls(t, c, 100); failed != 0 {
		t.Errorf("got %d failed calls, want 0", failed)
	}
	after := callCounts(ins)
	if got := after[0] - before[0]; got != 0 {
		t.Errorf("critical instance got %d calls, want 0", got)
	}
	if after[1] == before[1] || after[2] == before[2] {
		t.Errorf("got calls %v -> %v, want both healthy instances used", before, after)
	}

	// Healthy again: it comes back.
	sick.Store(false)
	allServe(t, c, ins)
}

func TestConsulDownKeepsEndpoints(t *testing.T) {
	e := newEnv(t)
	var ins []*grpckittest.Backend
	for range 3 {
		in, _ := e.startServer(t, nil)
		ins = append(ins, in)
	}
	wait.For(t, 5*time.Second, "3 passing instances", func() bool { return len(e.passing(t)) == 3 })
	// The client reads Consul through a proxy the test takes down.
	proxy := consultest.StartProxy(t, e.agent.Addr)
	reg := prometheus.NewPedanticRegistry()
	c := e.dial(t, consultest.NewClient(t, proxy.Addr()),
		consul.WithResolverOptions(resolver.WithRegisterer(reg)))
	allServe(t, c, ins)

	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			f := calls(t, c, 1)
			failed.Add(int64(f))
			total.Add(1)
		}
	})

	proxy.Down()
	errs := func() float64 { return metricValue(t, reg, "grpckit_resolver_errors_total") }
	wait.For(t, 5*time.Second, "the resolver to see Consul down 6 times", func() bool { return errs() >= 6 })
	base := callCounts(ins)
	wait.For(t, 5*time.Second, "all 3 instances to serve while Consul is down", func() bool {
		for i, n := range callCounts(ins) {
			if n == base[i] {
				return false
			}
		}
		return true
	})
	proxy.Up(t)
	wait.For(t, 5*time.Second, "the resolver to read Consul again", func() bool {
		for _, r := range proxy.Requests() {
			if r.Index != "" && time.Since(r.At) < time.Second {
				return true
			}
		}
		return false
	})
	close(stop)
	wg.Wait()
	if got := failed.Load(); got != 0 {
		t.Errorf("got %d failed calls of %d, want 0", got, total.Load())
	}
	if got := metricValue(t, reg, "grpckit_resolver_endpoints"); got != 3 {
		t.Errorf("got %v endpoints, want 3", got)
	}
}

// metricValue sums the series of a metric family in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
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
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

func TestAgentForgetsRegistration(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		forget func(t *testing.T, reg *consul.Registrar, proxy *consultest.Proxy)
	}{
		{"service removed", func(t *testing.T, reg *consul.Registrar, _ *consultest.Proxy) {
			e.agent.Forget(t, reg.ServiceID())
		}},
		{"agent restarted empty", func(t *testing.T, reg *consul.Registrar, proxy *consultest.Proxy) {
			// Down, lose the registration, up: what a restart without
			// a data dir looks like to the registrar.
			proxy.Down()
			e.agent.Forget(t, reg.ServiceID())
			time.Sleep(50 * time.Millisecond) // let the registrar see the agent down
			proxy.Up(t)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := consultest.StartProxy(t, e.agent.Addr)
			in, reg := e.startServer(t, consultest.NewClient(t, proxy.Addr()))
			wait.For(t, 5*time.Second, "the instance to pass", func() bool { return e.passing(t)[reg.ServiceID()] })
			id := reg.ServiceID()
			c := e.dial(t, nil)
			allServe(t, c, []*grpckittest.Backend{in})

			if st := reg.Status(); !st.Registered || st.Registry != "consul" || st.Key != id || st.Repairs != 0 {
				t.Errorf("Status before: got %+v, want registered in consul as %s, no repairs", st, id)
			}
			tt.forget(t, reg, proxy)
			wait.For(t, 5*time.Second, "the registration to come back", func() bool { return e.passing(t)[id] })
			allServe(t, c, []*grpckittest.Backend{in})
			// The admin page's view: registered again, one repair.
			wait.For(t, 5*time.Second, "the repair reported", func() bool {
				st := reg.Status()
				return st.Registered && st.Repairs >= 1 && st.Error == ""
			})
		})
	}
}

func TestNoPassingInstanceIsEmptyList(t *testing.T) {
	e := newEnv(t)
	// The default client, breaker included: calls that fail because the
	// list is empty must not hold later ones off once the instance recovers.
	var sick atomic.Bool
	in, reg := e.startServer(t, nil, consul.WithHealthFunc(func(context.Context) error {
		if sick.Load() {
			return errors.New("test: sick")
		}
		return nil
	}))
	c := e.dial(t, nil)
	allServe(t, c, []*grpckittest.Backend{in})
	sick.Store(true)
	wait.For(t, 5*time.Second, "the agent to report it critical", func() bool { return !e.passing(t)[reg.ServiceID()] })
	// The empty list reaches the balancer just before the resolver's error
	// does; for that instant a call may see the balancer's own "no
	// endpoints". What callers see from then on names the service.
	var err error
	ok := wait.Poll(5*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		return status.Code(err) == codes.Unavailable &&
			strings.Contains(err.Error(), "service has no instances") && strings.Contains(err.Error(), e.svc)
	})
	if !ok {
		t.Fatalf("callers see %v, want Unavailable naming %s and saying it has no instances", err, e.svc)
	}
	sick.Store(false)
	allServe(t, c, []*grpckittest.Backend{in})
}

func TestClientStartsWhileConsulDown(t *testing.T) {
	e := newEnv(t)
	in, _ := e.startServer(t, nil)
	proxy := consultest.StartProxy(t, e.agent.Addr)
	proxy.Down()
	c := e.dial(t, consultest.NewClient(t, proxy.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	cancel()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v, want Unavailable before the first answer", err)
	}
	proxy.Up(t)
	allServe(t, c, []*grpckittest.Backend{in})
}

func TestTargetTagFilterAndMetadata(t *testing.T) {
	e := newEnv(t)
	blue, _ := e.startServer(t, nil, consul.WithTags("blue"), consul.WithMetadata(map[string]string{"zone": "z1"}))
	green, _ := e.startServer(t, nil, consul.WithTags("green"))
	wait.For(t, 5*time.Second, "2 passing instances", func() bool { return len(e.passing(t)) == 2 })
	b, err := consul.NewBuilder(e.client, consul.WithWaitTime(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.New("consul:///"+e.svc+"?tag=blue", grpckit.WithInsecure(), grpckit.WithAccessLog(false), client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := echov1.NewEchoServiceClient(conn)
	allServe(t, c, []*grpckittest.Backend{blue})
	before := green.Faults.Calls()
	if failed := calls(t, c, 50); failed != 0 {
		t.Fatalf("got %d failed calls, want 0", failed)
	}
	if got := green.Faults.Calls() - before; got != 0 {
		t.Errorf("untagged instance got %d calls, want 0", got)
	}

	// A bad parameter fails calls with a clear error instead of hanging.
	conn2, err := client.New("consul:///"+e.svc+"?colour=blue", grpckit.WithInsecure(), grpckit.WithAccessLog(false), client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = echov1.NewEchoServiceClient(conn2).Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "colour") {
		t.Errorf("got %v, want Unavailable naming the parameter", err)
	}
}

func TestRegistrar(t *testing.T) {
	e := newEnv(t)
	// The registrar talks through a proxy that records what it sends.
	proxy := consultest.StartProxy(t, e.agent.Addr)
	reg, err := consul.NewRegistrar(consultest.NewClient(t, proxy.Addr()), e.svc, consul.WithTags("a", "b"),
		consul.WithMetadata(map[string]string{"version": "v2"}), consul.WithWeights(5, 1),
		consul.WithAddress("127.0.0.1:4321"), consul.WithTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := grpckittest.Context(t, 5*time.Second)
	if err := reg.Register(ctx, "0.0.0.0:9"); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if err := reg.Register(ctx, "127.0.0.1:9"); !errors.Is(err, consul.ErrRegistered) {
		t.Errorf("second Register: got %v, want ErrRegistered", err)
	}
	var entry *api.ServiceEntry
	wait.For(t, 5*time.Second, "the registration", func() bool {
		es, _, err := e.client.Health().Service(e.svc, "", true, nil)
		if err != nil || len(es) != 1 {
			return false
		}
		entry = es[0]
		return true
	})
	s := entry.Service
	if s.Address != "127.0.0.1" || s.Port != 4321 || s.Weights.Passing != 5 || s.Meta["version"] != "v2" || strings.Join(s.Tags, ",") != "a,b" {
		t.Errorf("got %+v, want 127.0.0.1:4321, weight 5, meta and tags as set", s)
	}
	var sent api.AgentServiceRegistration
	for _, r := range proxy.Requests() {
		if r.Path == "/v1/agent/service/register" {
			if err := json.Unmarshal(r.Body, &sent); err != nil {
				t.Fatalf("register body: %v", err)
			}
		}
	}
	if sent.Check == nil || sent.Check.TTL != "1s" || sent.Check.DeregisterCriticalServiceAfter != consul.DefaultDeregisterCriticalAfter.String() {
		t.Errorf("got check %+v, want TTL 1s and DeregisterCriticalServiceAfter %v", sent.Check, consul.DefaultDeregisterCriticalAfter)
	}
	var found bool
	for _, c := range entry.Checks {
		found = found || c.CheckID == reg.CheckID() && c.Status == api.HealthPassing
	}
	if !found {
		t.Errorf("got checks %+v, want %s passing", entry.Checks, reg.CheckID())
	}
	for i := range 2 {
		if err := reg.Deregister(ctx); err != nil {
			t.Errorf("Deregister #%d: got %v, want nil", i+1, err)
		}
	}
	if got := e.passing(t); len(got) != 0 {
		t.Errorf("after Deregister got %v, want none", got)
	}
}

func TestRegistrarErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		svc  string
		opts []consul.RegistrarOption
		want error
	}{
		{"bad service", "a/b", nil, resolver.ErrBadTarget},
		{"bad address", "svc", []consul.RegistrarOption{consul.WithAddress("nohost")}, consul.ErrBadOption},
		{"bad weights", "svc", []consul.RegistrarOption{consul.WithWeights(0, 1)}, consul.ErrBadOption},
		{"bad ttl", "svc", []consul.RegistrarOption{consul.WithTTL(time.Millisecond)}, consul.ErrBadOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := consul.NewRegistrar(e.client, tt.svc, tt.opts...); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	reg, err := consul.NewRegistrar(e.client, "svc")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"0.0.0.0:80", "[::]:80", "127.0.0.1", "127.0.0.1:0", ":80"} {
		if err := reg.Register(context.Background(), addr); !errors.Is(err, consul.ErrBadAddress) {
			t.Errorf("Register(%q): got %v, want ErrBadAddress", addr, err)
		}
	}
	if err := reg.Deregister(context.Background()); err != nil {
		t.Errorf("Deregister before Register: got %v, want nil", err)
	}
}

// TestServerCutOffTurnsCriticalWithinTTL: a server whose registrar cannot
// reach the agent any more (killed, partitioned) stops being used once its
// TTL runs out, without deregistering.
func TestServerCutOffTurnsCriticalWithinTTL(t *testing.T) {
	e := newEnv(t)
	proxy := consultest.StartProxy(t, e.agent.Addr)
	cut, reg := e.startServer(t, consultest.NewClient(t, proxy.Addr()))
	other, _ := e.startServer(t, nil)
	wait.For(t, 5*time.Second, "2 passing instances", func() bool { return len(e.passing(t)) == 2 })
	c := e.dial(t, nil)
	allServe(t, c, []*grpckittest.Backend{cut, other})

	proxy.Down() // the registrar's TTL updates stop reaching the agent
	// TTL 600ms: critical within it, plus the blocking query's round.
	wait.For(t, 3*time.Second, "the cut-off instance to turn critical", func() bool { return !e.passing(t)[reg.ServiceID()] })
	wait.For(t, 3*time.Second, "calls to avoid it", func() bool {
		before := cut.Faults.Calls()
		if failed := calls(t, c, 20); failed != 0 {
			t.Fatalf("got %d failed calls, want 0", failed)
		}
		return cut.Faults.Calls() == before
	})
	proxy.Up(t)
	allServe(t, c, []*grpckittest.Backend{cut, other})
}
