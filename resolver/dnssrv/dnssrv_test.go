package dnssrv

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/dnstest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const name = "_grpc._tcp.svc.test"

// fakeCC is a gRPC ClientConn that records the states and errors a
// resolver hands it.
type fakeCC struct {
	grpcresolver.ClientConn
	mu     sync.Mutex
	states []grpcresolver.State
	errs   []error
}

func (f *fakeCC) UpdateState(s grpcresolver.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, s)
	return nil
}

func (f *fakeCC) ReportError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
}

func (f *fakeCC) ParseServiceConfig(string) *serviceconfig.ParseResult { return nil }

// last returns the last state's endpoints by address, and the number of
// states and errors so far.
func (f *fakeCC) last() (eps map[string]resolver.Endpoint, states, errs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.states) == 0 {
		return nil, 0, len(f.errs)
	}
	eps = map[string]resolver.Endpoint{}
	for _, ep := range f.states[len(f.states)-1].Endpoints {
		e := resolver.FromGRPC(ep)
		eps[e.Addr] = e
	}
	return eps, len(f.states), len(f.errs)
}

// build starts a resolver for target with a recording ClientConn.
func build(t *testing.T, target string, opts ...Option) (*fakeCC, grpcresolver.Resolver) {
	t.Helper()
	b, err := NewBuilder(append([]Option{
		WithRefresh(50*time.Millisecond, time.Hour),
		WithTimeout(200 * time.Millisecond),
		WithBackoff(resolver.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond}),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	cc := &fakeCC{}
	r, err := b.Build(grpcresolver.Target{URL: *u}, cc, grpcresolver.BuildOptions{})
	if err != nil {
		t.Fatalf("Build(%s): %v", target, err)
	}
	t.Cleanup(r.Close)
	return cc, r
}

func addrs(m map[string]resolver.Endpoint) []string {
	var out []string
	for a := range m {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

func hasAddrs(cc *fakeCC, want ...string) func() bool {
	return func() bool {
		eps, _, _ := cc.last()
		return eps != nil && slices.Equal(addrs(eps), want)
	}
}

// instance is an echo server on 127.0.0.1 and its backend, which counts
// its calls.
type instance struct {
	*grpckittest.Server
	Echo *grpckittest.Backend
}

// startServer starts an echo server on 127.0.0.1 and returns it with its
// port.
func startServer(t *testing.T) (instance, uint16) {
	t.Helper()
	b := &grpckittest.Backend{}
	in := instance{grpckittest.NewServer(t, b.Register, grpckit.WithAccessLog(false)), b}
	_, p, _ := net.SplitHostPort(in.Addr)
	port, _ := strconv.Atoi(p)
	return in, uint16(port)
}

func dial(t *testing.T, dnsAddr string, opts ...Option) echov1.EchoServiceClient {
	t.Helper()
	b, err := NewBuilder(append([]Option{
		WithRefresh(50*time.Millisecond, time.Hour),
		WithTimeout(200 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	conn := grpckittest.Dial(t, "dnssrv://"+dnsAddr+"/"+name, grpckit.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(b)))
	return echov1.NewEchoServiceClient(conn)
}

func call(c echov1.EchoServiceClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	return err
}

// served waits until in receives calls from c, and returns the failures.
func served(t *testing.T, c echov1.EchoServiceClient, in instance) {
	t.Helper()
	before := in.Echo.Faults.Calls()
	wait.For(t, 5*time.Second, "calls on "+in.Addr, func() bool {
		_ = call(c)
		return in.Echo.Faults.Calls() > before
	})
}

func TestPriorityWithFallback(t *testing.T) {
	d := dnstest.Start(t)
	primary, pp := startServer(t)
	backup, bp := startServer(t)
	d.SetSRV(name,
		dnstest.SRV{Priority: 10, Weight: 1, Port: pp, Target: "primary.svc.test", TTL: 1},
		dnstest.SRV{Priority: 20, Weight: 1, Port: bp, Target: "backup.svc.test", TTL: 1})
	d.SetHost("primary.svc.test", "127.0.0.1")
	d.SetHost("backup.svc.test", "127.0.0.1")
	c := dial(t, d.Addr())
	served(t, c, primary)
	before := backup.Echo.Faults.Calls()
	for range 20 {
		if err := call(c); err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	if got := backup.Echo.Faults.Calls() - before; got != 0 {
		t.Errorf("priority 20 got %d calls while priority 10 has targets, want 0", got)
	}

	// The primary group empties: its target has no address any more.
	d.SetHost("primary.svc.test")
	served(t, c, backup)
	d.SetHost("primary.svc.test", "127.0.0.1")
	served(t, c, primary)
}

func TestWeightsAndAddresses(t *testing.T) {
	d := dnstest.Start(t)
	d.SetSRV(name,
		dnstest.SRV{Priority: 1, Weight: 70, Port: 1001, Target: "a.svc.test", TTL: 30},
		dnstest.SRV{Priority: 1, Weight: 30, Port: 1002, Target: "b.svc.test", TTL: 30},
		dnstest.SRV{Priority: 1, Weight: 0, Port: 1003, Target: "c.svc.test", TTL: 30})
	d.SetHost("a.svc.test", "127.0.0.1", "::1")
	d.SetHost("b.svc.test", "127.0.0.1")
	d.SetHost("c.svc.test", "127.0.0.1")
	for _, additional := range []bool{true, false} {
		t.Run("additional="+strconv.FormatBool(additional), func(t *testing.T) {
			d.SetAdditional(additional)
			aBefore := d.Queries("udp", "A")
			cc, _ := build(t, "dnssrv://"+d.Addr()+"/"+name)
			wait.For(t, 5*time.Second, "endpoints", hasAddrs(cc, "127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", "[::1]:1001"))
			eps, _, _ := cc.last()
			want := map[string]uint32{"127.0.0.1:1001": 70, "[::1]:1001": 70, "127.0.0.1:1002": 30, "127.0.0.1:1003": 0}
			for a, w := range want {
				if got := eps[a]; got.Weight != w || got.Metadata[MetaPriority] != "1" {
					t.Errorf("%s: got weight %d priority %q, want %d, 1", a, got.Weight, got.Metadata[MetaPriority], w)
				}
			}
			if got := eps["127.0.0.1:1003"].EffectiveWeight(); got != 1 {
				t.Errorf("weight 0: got effective weight %d, want 1", got)
			}
			aQueries := d.Queries("udp", "A") - aBefore
			if additional && aQueries != 0 {
				t.Errorf("got %d A queries, want 0 (additional section used)", aQueries)
			}
			if !additional && aQueries < 3 {
				t.Errorf("got %d A queries, want >= 3", aQueries)
			}
		})
	}
}

func TestTTLRefresh(t *testing.T) {
	d := dnstest.Start(t)
	one, p1 := startServer(t)
	two, p2 := startServer(t)
	const ttl = 1
	d.SetSRV(name, dnstest.SRV{Priority: 1, Weight: 1, Port: p1, Target: "one.svc.test", TTL: ttl})
	d.SetHost("one.svc.test", "127.0.0.1")
	d.SetHost("two.svc.test", "127.0.0.1")
	d.SetHostTTL(ttl)
	c := dial(t, d.Addr())
	served(t, c, one)

	changed := time.Now()
	d.SetSRV(name, dnstest.SRV{Priority: 1, Weight: 1, Port: p2, Target: "two.svc.test", TTL: ttl})
	// On an idle machine the change is picked up within the record's TTL
	// plus the connection's setup (logged below); the wait is longer, as
	// re-resolving, connecting and calling can each be slow on a loaded
	// one. It still fails a resolver that does not refresh at the TTL: it
	// would wait its maximum refresh (an hour here).
	wait.For(t, 10*time.Second, "the change to be picked up (TTL 1 s)", func() bool {
		_ = call(c)
		return two.Echo.Faults.Calls() > 0
	})
	t.Logf("change picked up after %v (TTL %ds)", time.Since(changed).Round(time.Millisecond), ttl)
	// The old record is gone from the list: calls stop reaching it.
	wait.For(t, 5*time.Second, "calls to leave the old target", func() bool {
		before := one.Echo.Faults.Calls()
		for range 10 {
			_ = call(c)
		}
		return one.Echo.Faults.Calls() == before
	})
}

func TestRefreshBounds(t *testing.T) {
	d := dnstest.Start(t)
	tests := []struct {
		name       string
		ttl        uint32
		minR, maxR time.Duration
		period     time.Duration // the refresh the bounds give the TTL
		window     time.Duration // how long to watch at least
		atLeast    int64         // SRV queries
	}{
		// TTL 0 would mean "ask every time": the minimum holds.
		{"ttl 0 raised to min", 0, 100 * time.Millisecond, time.Hour, 100 * time.Millisecond, 500 * time.Millisecond, 3},
		// A day-long TTL is lowered to the maximum.
		{"ttl 1d lowered to max", 86400, 10 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.SetSRV(name, dnstest.SRV{Priority: 1, Weight: 1, Port: 1, Target: "x.svc.test", TTL: tt.ttl})
			d.SetHost("x.svc.test", "127.0.0.1")
			d.SetHostTTL(tt.ttl)
			before := d.Queries("udp", "SRV")
			built := time.Now()
			cc, r := build(t, "dnssrv://"+d.Addr()+"/"+name, WithRefresh(tt.minR, tt.maxR))
			wait.For(t, 5*time.Second, "endpoints", hasAddrs(cc, "127.0.0.1:1"))
			start := time.Now()
			for time.Since(start) < tt.window {
				time.Sleep(10 * time.Millisecond)
			}
			// The resolver refreshes: on a loaded machine its timers can
			// fire late, so the lower bound is waited for, not timed.
			wait.For(t, 5*time.Second, "the refreshes' SRV queries", func() bool {
				return d.Queries("udp", "SRV")-before >= tt.atLeast
			})
			r.Close() // waits for the resolver: it sends no query after
			elapsed := time.Since(built)
			got := d.Queries("udp", "SRV") - before
			// The upper bound is derived from the time measured, not the
			// window (sleeps overshoot on a loaded machine): a query at
			// Build, then one per period at most (a failed query, which
			// backs off less, first waits out its 200 ms timeout).
			atMost := 1 + int64(elapsed/tt.period)
			if got < tt.atLeast || got > atMost {
				t.Errorf("got %d SRV queries in %v, want %d..%d (one at the start, one per %v at most)",
					got, elapsed.Round(time.Millisecond), tt.atLeast, atMost, tt.period)
			}
		})
	}
}

func TestResolveNow(t *testing.T) {
	d := dnstest.Start(t)
	d.SetSRV(name, dnstest.SRV{Priority: 1, Weight: 1, Port: 1, Target: "x.svc.test", TTL: 3600})
	d.SetHost("x.svc.test", "127.0.0.1")
	cc, r := build(t, "dnssrv://"+d.Addr()+"/"+name)
	wait.For(t, 5*time.Second, "endpoints", hasAddrs(cc, "127.0.0.1:1"))
	d.SetSRV(name, dnstest.SRV{Priority: 1, Weight: 1, Port: 2, Target: "x.svc.test", TTL: 3600})
	r.ResolveNow(grpcresolver.ResolveNowOptions{})
	wait.For(t, 5*time.Second, "the change after ResolveNow", hasAddrs(cc, "127.0.0.1:2"))
}

func TestNXDomainVersusFailures(t *testing.T) {
	tests := []struct {
		name      string
		failure   dnstest.Failure
		wantEmpty bool
	}{
		{"servfail keeps the set", dnstest.ServFail, false},
		{"timeout keeps the set", dnstest.Timeout, false},
		{"nxdomain empties it", dnstest.NXDomain, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dnstest.Start(t)
			in, port := startServer(t)
			d.SetSRV(name, dnstest.SRV{Priority: 1, Weight: 1, Port: port, Target: "x.svc.test", TTL: 0})
			d.SetHost("x.svc.test", "127.0.0.1")
			cc, _ := build(t, "dnssrv://"+d.Addr()+"/"+name)
			c := dial(t, d.Addr())
			served(t, c, in)
			wait.For(t, 5*time.Second, "endpoints", hasAddrs(cc, in.Addr))

			d.SetFailure(name, tt.failure)
			if tt.wantEmpty {
				wait.For(t, 5*time.Second, "an empty list", hasAddrs(cc))
				wait.For(t, 5*time.Second, "calls to fail with Unavailable", func() bool {
					return status.Code(call(c)) == codes.Unavailable
				})
				return
			}
			_, states, _ := cc.last()
			// Each failed resolution is one query; two resolvers ask.
			q := d.Queries("udp", "SRV")
			wait.For(t, 5*time.Second, "6 failed resolutions", func() bool { return d.Queries("udp", "SRV") >= q+6 })
			for i := range 50 {
				if err := call(c); err != nil {
					t.Fatalf("call %d during the failure: %v", i, err)
				}
			}
			eps, states2, _ := cc.last()
			if states2 != states || len(eps) != 1 {
				t.Errorf("got %d states (%d endpoints), want %d states, the set kept", states2, len(eps), states)
			}
		})
	}
}

func TestTruncatedAnswerOverTCP(t *testing.T) {
	d := dnstest.Start(t)
	in, port := startServer(t)
	d.SetSRV(name, dnstest.SRV{Priority: 1, Weight: 1, Port: port, Target: "x.svc.test", TTL: 30})
	d.SetHost("x.svc.test", "127.0.0.1")
	d.SetTruncate(true)
	c := dial(t, d.Addr())
	served(t, c, in)
	if udp, tcp := d.Queries("udp", "SRV"), d.Queries("tcp", "SRV"); udp == 0 || tcp == 0 {
		t.Errorf("got %d UDP and %d TCP SRV queries, want both > 0", udp, tcp)
	}
}

func TestRegisteredByName(t *testing.T) {
	if b := grpcresolver.Get(Scheme); b == nil || b.Scheme() != Scheme {
		t.Fatalf("got %v, want a registered %q builder", b, Scheme)
	}
}

func TestBadTargets(t *testing.T) {
	tests := []string{
		"dnssrv://127.0.0.1:99999/" + name,
		"dnssrv:///" + name + "?x=1",
	}
	for _, target := range tests {
		t.Run(target, func(t *testing.T) {
			cc, _ := build(t, target)
			wait.For(t, 5*time.Second, "an error", func() bool {
				_, _, errs := cc.last()
				return errs > 0
			})
			cc.mu.Lock()
			err := cc.errs[0]
			cc.mu.Unlock()
			if !errors.Is(err, resolver.ErrBadTarget) {
				t.Errorf("got %v, want ErrBadTarget", err)
			}
		})
	}
	if _, err := NewBuilder(WithRefresh(time.Second, time.Millisecond)); !errors.Is(err, ErrBadOption) {
		t.Errorf("got %v, want ErrBadOption", err)
	}
	if _, err := NewBuilder(WithServer("host:0")); !errors.Is(err, ErrBadOption) {
		t.Errorf("got %v, want ErrBadOption", err)
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		authority, service string
		query              url.Values
		wantName, wantSrv  string
		wantErr            bool
	}{
		{"", name, nil, name + ".", "10.0.0.1:53", false},
		{"127.0.0.1:5353", name, nil, name + ".", "127.0.0.1:5353", false},
		{"127.0.0.1", name, nil, name + ".", "127.0.0.1:53", false},
		{"[::1]:5353", name, nil, name + ".", "[::1]:5353", false},
		{"[::1]", name, nil, name + ".", "[::1]:53", false},
		{"127.0.0.1:0", name, nil, "", "", true},
		{"", name, url.Values{"a": {"b"}}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.authority+"/"+tt.service, func(t *testing.T) {
			n, s, err := parseTarget(resolver.Target{Authority: tt.authority, Service: tt.service, Query: tt.query}, "10.0.0.1:53")
			if (err != nil) != tt.wantErr || n != tt.wantName || s != tt.wantSrv {
				t.Errorf("got %q %q %v, want %q %q error %v", n, s, err, tt.wantName, tt.wantSrv, tt.wantErr)
			}
		})
	}
}

// FuzzParseTarget: any dial target either fails with an error or yields a
// fully qualified domain name and a host:port server.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"dnssrv:///" + name, "dnssrv://127.0.0.1:5353/" + name, "dnssrv://[::1]/" + name,
		"dnssrv:///", "dnssrv://:53/x", "dnssrv:///x?y=z", "dnssrv://h:99999/x", "dnssrv:///a..b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		pt, err := resolver.ParseTarget(grpcresolver.Target{URL: *u})
		if err != nil {
			return
		}
		n, s, err := parseTarget(pt, "127.0.0.1:53")
		if err != nil {
			return
		}
		if !dns.IsFqdn(n) {
			t.Errorf("name %q is not fully qualified", n)
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			t.Errorf("server %q: %v", s, err)
		}
	})
}

// FuzzSRVAnswer feeds DNS messages to the selection logic, addresses taken
// from the additional section: no panic, every endpoint comes from one
// priority group (the lowest with addresses) and has a dialable address.
func FuzzSRVAnswer(f *testing.F) {
	seed := func(build func(m *dns.Msg)) {
		m := new(dns.Msg)
		m.SetQuestion(name+".", dns.TypeSRV)
		build(m)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	srv := func(prio, weight, port uint16, target string) dns.RR {
		return &dns.SRV{Hdr: dns.RR_Header{Name: name + ".", Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 5},
			Priority: prio, Weight: weight, Port: port, Target: target}
	}
	a := func(host, ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(ip)}
	}
	seed(func(m *dns.Msg) {
		m.Answer = []dns.RR{srv(10, 5, 80, "a.test."), srv(20, 1, 81, "b.test.")}
		m.Extra = []dns.RR{a("a.test.", "127.0.0.1"), a("b.test.", "127.0.0.1")}
	})
	seed(func(m *dns.Msg) {
		m.Answer = []dns.RR{srv(10, 5, 80, "a.test."), srv(20, 1, 81, "b.test.")}
		m.Extra = []dns.RR{a("b.test.", "127.0.0.1")}
	})
	seed(func(m *dns.Msg) { m.Answer = []dns.RR{srv(0, 0, 0, "."), srv(1, 1, 1, "a.test.")} })
	seed(func(m *dns.Msg) {
		m.Answer = []dns.RR{srv(1, 1, 1, "A.TEST."), srv(1, 1, 1, "a.test.")}
		m.Extra = []dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: net.ParseIP("::1")}}
	})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			return
		}
		extra := additional(m.Extra)
		srvs := srvRecords(m.Answer)
		ans, err := choose(srvs, func(target string) ([]net.IP, uint32, error) {
			h := extra[strings.ToLower(target)]
			return h.ips, h.ttl, nil
		})
		if err != nil {
			t.Fatalf("choose: %v", err)
		}
		prios := map[string]bool{}
		for k, ep := range ans.endpoints {
			prios[ep.Metadata[MetaPriority]] = true
			host, port, err := net.SplitHostPort(ep.Addr)
			if err != nil || net.ParseIP(host) == nil || port == "0" {
				t.Errorf("endpoint %q: bad address %q", k, ep.Addr)
			}
		}
		if len(prios) > 1 {
			t.Errorf("got priorities %v, want one group", prios)
		}
		// The group used is the lowest with any address.
		lowest := -1
		for _, s := range srvs {
			if len(extra[strings.ToLower(s.Target)].ips) > 0 && (lowest < 0 || int(s.Priority) < lowest) {
				if ip := extra[strings.ToLower(s.Target)].ips; slices.ContainsFunc(ip, func(i net.IP) bool { return i != nil && !i.IsUnspecified() }) {
					lowest = int(s.Priority)
				}
			}
		}
		if lowest >= 0 && !prios[strconv.Itoa(lowest)] {
			t.Errorf("got priorities %v, want %d", prios, lowest)
		}
	})
}
