package faultsuite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/internal/dnstest"
	"github.com/grpckit/grpckit/internal/etcdtest"
	"github.com/grpckit/grpckit/internal/wait"
	"github.com/grpckit/grpckit/resolver/dnssrv"
	"github.com/grpckit/grpckit/resolver/etcd"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(child())
	}
	goleak.VerifyTestMain(m)
}

const (
	service = "faults"
	method  = "/grpckit.echo.v1.EchoService/Echo"
	srvName = "_grpc._tcp.faults.test"
)

// mode is the suite's size: short (CI, under two minutes) or long
// (GRPCKIT_FAULTS=long).
type mode struct {
	name        string
	rate        float64       // calls per second
	hold, after time.Duration // how long a fault lasts; how long the after-window is
	// deadline is each call's deadline under the faults whose budget is
	// counted in deadlines (a frozen, hung or black-holed server): it must
	// stay well below hold, or the calls stuck on the server would simply
	// outwait the fault and succeed.
	deadline time.Duration
	// longDeadline is each call's deadline under every other fault. Their
	// budgets (no call lost, only the calls in flight, ...) do not depend
	// on it, and a call slower than deadline on a loaded CI machine (a
	// race-detector run on 2 shared cores) is no failure of grpckit, so it
	// must not count as one. A call that hangs still fails; slow calls show
	// in the latency columns.
	longDeadline time.Duration
}

func suiteMode() mode {
	if os.Getenv("GRPCKIT_FAULTS") == "long" {
		return mode{name: "long", rate: 1000, hold: 10 * time.Second, after: 5 * time.Second,
			deadline: time.Second, longDeadline: 3 * time.Second}
	}
	return mode{name: "short", rate: 200, hold: 2 * time.Second, after: 1500 * time.Millisecond,
		deadline: time.Second, longDeadline: 3 * time.Second}
}

// The client's balancer: grpckit's p2c with a short ejection, so that an
// endpoint ejected by one fault is back for the next.
const lbConfig = `{"loadBalancingConfig":[{"p2c":{"ejection":{"baseEjectionTime":"1s","maxEjectionTime":"2s"}}}]}`

// proc is a server process.
type proc struct {
	name       string
	addr, ctl  string // gRPC and control addresses
	registered string // the address clients reach it at (a proxy's, or addr)
	cmd        *exec.Cmd
	exited     chan struct{}
	err        error // after exited: Wait's result
	stderr     *tail
	killed     bool
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// tail keeps the last 16 KiB written to it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if n := len(t.b); n > 16<<10 {
		t.b = t.b[n-16<<10:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// row is one fault's line of the table.
type row struct {
	fault          string
	during, after  stats
	inflight       int
	recovery       time.Duration
	budget, result string
	note           string
}

type suite struct {
	t      *testing.T
	m      mode
	etcd   *etcdtest.TestEtcd
	env    []string
	procs  []*proc // every process started
	byName map[string]*proc
	rows   []row
	next   int // names of replacements
}

func (s *suite) start(name, advertise string) *proc {
	t := s.t
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Env = append(cmd.Env, envChild+"=1", envAdvertise+"="+advertise)
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), stderr: &tail{}}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.procs = append(s.procs, p)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			ready <- sc.Text()
		}
		close(ready)
		_, _ = io.Copy(io.Discard, out)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	line, ok := "", false
	select {
	case line, ok = <-ready:
	case <-time.After(60 * time.Second):
	}
	f := strings.Fields(line)
	if !ok || len(f) != 3 || f[0] != "READY" {
		t.Fatalf("server %s did not start: %q\n%s", name, line, p.stderr)
	}
	p.addr, p.ctl, p.registered = f[1], f[2], f[1]
	if advertise != "" {
		p.registered = advertise
	}
	s.byName[name] = p
	return p
}

// replacement starts a new server to take the place of old.
func (s *suite) replacement(old *proc) *proc {
	s.next++
	p := s.start(old.name+"'"+strconv.Itoa(s.next), "")
	delete(s.byName, old.name)
	return p
}

func (s *suite) signal(p *proc, sig syscall.Signal) {
	s.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// recycle replaces p by a new server and stops p gracefully, as an
// operator would after a fault: the balancer's statistics of p (a latency
// of a full deadline after a hang decays over tens of seconds) must not
// bias the next fault.
func (s *suite) recycle(l *load, p *proc) {
	s.t.Helper()
	nw := s.replacement(p)
	s.byName[p.name] = p // in service until stopped
	s.spread(l, []*proc{nw})
	s.stop(p)
}

// stop shuts p down gracefully (SIGTERM) and checks it exited 0.
func (s *suite) stop(p *proc) {
	s.t.Helper()
	s.signal(p, syscall.SIGTERM)
	<-p.exited
	if p.err != nil {
		s.t.Errorf("server %s after SIGTERM: %v, want exit 0\n%s", p.name, p.err, p.stderr)
	}
	delete(s.byName, p.name)
}

func (s *suite) setMode(p *proc, m string) {
	s.t.Helper()
	resp, err := http.Post("http://"+p.ctl+"/mode/"+m, "text/plain", nil)
	if err != nil {
		s.t.Fatalf("mode %s on %s: %v", m, p.name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("mode %s on %s: %s", m, p.name, resp.Status)
	}
}

// live returns the servers in service.
func (s *suite) live() []*proc {
	var out []*proc
	for _, p := range s.procs {
		if s.byName[p.name] == p {
			out = append(out, p)
		}
	}
	return out
}

// busiest returns the server in service with the largest share of the
// last second's calls: a fault on a server the balancer already avoids
// (after an earlier fault) would prove nothing.
func (s *suite) busiest(l *load) *proc {
	st := summarize(l.window(time.Now().Add(-time.Second), time.Now()))
	var best *proc
	for _, p := range s.live() {
		if best == nil || st.byPeer[p.registered] > st.byPeer[best.registered] {
			best = p
		}
	}
	return best
}

// spread waits until every server in service answers calls of l.
func (s *suite) spread(l *load, servers []*proc) {
	s.t.Helper()
	from := time.Now()
	wait.For(s.t, 30*time.Second, "every server to get calls", func() bool {
		st := summarize(l.window(from, time.Now()))
		for _, p := range servers {
			if st.byPeer[p.registered] < 3 {
				return false
			}
		}
		return true
	})
}

func hold(d time.Duration) {
	if d > 0 {
		time.Sleep(d) // the fault's duration, not a wait for something
	}
}

// fault runs one fault under l: inject it, hold it, heal it, watch the
// after-window, then check the budget on what the calls saw. The calls of
// the fault (and of the wait before it) have the given deadline.
func (s *suite) fault(l *load, name, budget string, deadline, holdFor time.Duration, inject func() (heal func()),
	check func(r *row, during, after []record) []string) {
	t := s.t
	l.SetDeadline(deadline)
	s.spread(l, s.live())
	t0 := time.Now()
	heal := inject()
	hold(holdFor)
	tHeal := time.Now()
	if heal != nil {
		heal()
	}
	hold(s.m.after)
	tEnd := time.Now()
	wait.For(t, 30*time.Second, "the fault's calls to end", func() bool { return l.finishedBy(tEnd) })
	during, after := l.window(t0, tHeal), l.window(tHeal, tEnd)
	r := row{fault: name, during: summarize(during), after: summarize(after), inflight: l.inFlightAt(t0), budget: budget}
	all := summarize(append(append([]record(nil), during...), after...))
	if all.nFailed > 0 {
		r.recovery = all.lastFail.Sub(t0)
	}
	problems := check(&r, during, after)
	r.result = "ok"
	if len(problems) > 0 {
		r.result = "FAIL"
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
	}
	s.rows = append(s.rows, r)
}

func failures(rs ...[]record) []record {
	var out []record
	for _, r := range rs {
		for _, c := range r {
			if c.code != codes.OK {
				out = append(out, c)
			}
		}
	}
	return out
}

// zero is the budget of faults that must cost no call.
func zero(_ *row, during, after []record) []string {
	if f := failures(during, after); len(f) > 0 {
		return []string{fmt.Sprintf("%d failed calls (first %v on %s), want 0", len(f), f[0].code, f[0].peer)}
	}
	return nil
}

// inFlightOnly is the budget of a server lost at once (killed, its
// connections cut): only the calls in flight at that instant may fail.
func inFlightOnly(at func() time.Time) func(r *row, during, after []record) []string {
	return func(r *row, during, after []record) []string {
		var out []string
		f := failures(during, after)
		if len(f) > r.inflight {
			out = append(out, fmt.Sprintf("%d failed calls, want at most the %d in flight when it struck", len(f), r.inflight))
		}
		for _, c := range f {
			if !c.start.Before(at()) {
				out = append(out, fmt.Sprintf("a call started %v after the fault failed with %v", c.start.Sub(at()), c.code))
				break
			}
		}
		return out
	}
}

// unresponsive is the budget of a server that stops answering without
// closing its connections (frozen, hung, black-holed): the calls in flight
// on it, and those the balancer sent it before it noticed, fail at their
// deadline; every failure is a DeadlineExceeded on that server, at most
// the calls of one deadline's worth of its share of the load plus one
// probe per second held, and none after it heals.
func (s *suite) unresponsive(victim func() *proc, n int, tHeal *time.Time) func(r *row, during, after []record) []string {
	return func(r *row, during, after []record) []string {
		var out []string
		f := failures(during, after)
		allowed := r.inflight + int(s.m.rate*s.m.deadline.Seconds()/float64(n)) + int(s.m.hold.Seconds()) + 1
		if len(f) > allowed {
			out = append(out, fmt.Sprintf("%d failed calls, want at most %d (in flight %d + a deadline of its share + a probe per second)",
				len(f), allowed, r.inflight))
		}
		for _, c := range f {
			if c.code != codes.DeadlineExceeded || (c.peer != "" && c.peer != victim().registered) {
				out = append(out, fmt.Sprintf("a call failed with %v on %q, want only DeadlineExceeded on %s", c.code, c.peer, victim().registered))
				break
			}
			// *tHeal is taken once the heal has taken effect (the mode
			// switched, the signal sent, the proxy forwarding), not
			// before the round trip that heals; 100 ms is for the
			// call's own start to reach the server.
			if c.start.After(tHeal.Add(100 * time.Millisecond)) {
				out = append(out, fmt.Sprintf("a call started %v after the fault healed failed", c.start.Sub(*tHeal)))
				break
			}
		}
		return out
	}
}

// slowShare checks the share of the calls a slowed-down server (addr, one
// of n) got during the fault, and adds the slowdown measured to r's note.
//
// The delay injected is fixed (10× the base latency, or +50 ms on a link),
// but the latency the balancer sees is not: under the race detector on a
// loaded machine every call carries milliseconds of scheduling, so the
// slowed server may be only 3-4× slower than the others, and "below half a
// fair share" (the bound this check had, for 10×) cannot be guaranteed.
// What a latency-aware balancer must do for any real slowdown is give the
// slower server less than a fair share; the half-fair bound still applies
// when the slowdown measured (its median latency over the others', as the
// client sees them) is at least 10×, as it is for the +50 ms link on an
// idle machine. (The 10× backend measures about 5× even then: the
// client's own overhead adds to both latencies.)
func slowShare(what, addr string, n int, r *row, during []record) string {
	var mine, others []record
	for _, c := range during {
		switch {
		case c.code != codes.OK:
		case c.peer == addr:
			mine = append(mine, c)
		default:
			others = append(others, c)
		}
	}
	slowdown := 0.0
	if a, b := summarize(mine).p[0], summarize(others).p[0]; len(mine) > 0 && b > 0 {
		slowdown = float64(a) / float64(b)
	}
	if r.note != "" {
		r.note += "; "
	}
	r.note += fmt.Sprintf("slowdown %.1f×", slowdown)
	fair := 1 / float64(n)
	bound, want := fair, "a fair"
	if slowdown >= 10 {
		bound, want = fair/2, "half a fair"
	}
	if sh := r.during.share(addr); sh >= bound {
		return fmt.Sprintf("%s's share %.0f%% (measured slowdown %.1f×), want below %s %.0f%%", what, 100*sh, slowdown, want, 100*fair)
	}
	return ""
}

// ejections returns how often the client's balancer ejected addr.
func ejections(target, addr string) int64 {
	var n int64
	for _, b := range balancer.Snapshot() {
		if b.Target != target {
			continue
		}
		for _, e := range b.Endpoints {
			if e.Addr == addr {
				n += e.Ejections
			}
		}
	}
	return n
}

func TestFaults(t *testing.T) {
	m := suiteMode()
	goroutines := ours()
	e := etcdtest.StartTestEtcd(t)
	s := &suite{t: t, m: m, etcd: e, byName: map[string]*proc{},
		env: []string{envEtcd + "=" + strings.Join(e.Endpoints(), ","), envPrefix + "=" + e.Prefix}}
	defer func() {
		for _, p := range s.procs {
			if p.alive() {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	cli := e.Client(t)
	rb, err := etcd.NewBuilder(cli, etcd.WithPrefix(e.Prefix), etcd.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	const target = "etcd:///" + service
	conn, err := client.New(target, grpckit.WithInsecure(), grpckit.WithLogger(quiet), grpckit.WithAccessLog(false),
		client.WithIdempotent(method),
		client.WithDialOptions(grpc.WithResolvers(rb), grpc.WithDefaultServiceConfig(lbConfig)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	for i := 1; i <= 3; i++ {
		s.start("s"+strconv.Itoa(i), "")
	}
	l := startLoad(conn, m.rate, m.deadline, 1)
	defer l.Stop()
	start := time.Now()
	defer func() { s.report(time.Since(start)) }()
	s.spread(l, s.live())
	n := 3

	// Faults of the process and the registry.
	s.fault(l, "graceful restart (rolling, all 3)", "0 failed", m.longDeadline, 0, func() func() {
		for _, old := range s.live() {
			nw := s.replacement(old)
			s.byName[old.name] = old // still in service until stopped
			s.spread(l, []*proc{nw})
			s.stop(old)
		}
		return nil
	}, zero)
	if e.Embedded != nil {
		s.fault(l, "etcd stopped, restarted", "0 failed", m.longDeadline, m.hold, func() func() {
			e.Embedded.Stop()
			return func() {
				if err := e.Embedded.Start(); err != nil {
					t.Fatalf("etcd restart: %v", err)
				}
			}
		}, zero)
		kctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		wait.For(t, 30*time.Second, "registrations back in etcd", func() bool {
			resp, err := cli.Get(kctx, e.Prefix+service+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			return err == nil && resp.Count == int64(n)
		})
		cancel()
	} else {
		t.Log("etcd outage skipped: GRPCKIT_ETCD_ENDPOINTS names an external etcd the suite cannot stop")
	}
	var tFault time.Time
	s.fault(l, "server killed (SIGKILL)", "≤ in flight", m.longDeadline, m.deadline, func() func() {
		victim := s.live()[0]
		tFault = time.Now()
		s.signal(victim, syscall.SIGKILL)
		victim.killed = true
		<-victim.exited
		s.replacement(victim)
		return nil
	}, inFlightOnly(func() time.Time { return tFault }))

	var frozen *proc
	var tHeal time.Time
	s.fault(l, "server frozen (SIGSTOP, SIGCONT)", "deadline-bound", m.deadline, m.hold, func() func() {
		frozen = s.live()[1]
		s.signal(frozen, syscall.SIGSTOP)
		return func() { s.signal(frozen, syscall.SIGCONT); tHeal = time.Now() }
	}, s.unresponsive(func() *proc { return frozen }, n, &tHeal))
	s.recycle(l, frozen)

	backendFault := func(name, mode, budget string, deadline time.Duration, check func(victim *proc) func(r *row, during, after []record) []string) {
		victim := s.busiest(l)
		before := ejections(target, victim.registered)
		inner := check(victim)
		s.fault(l, name, budget, deadline, m.hold, func() func() {
			s.setMode(victim, mode)
			// tHeal once the server answers that it is back to normal:
			// the HTTP round trip can take a while on a loaded machine.
			return func() { s.setMode(victim, "normal"); tHeal = time.Now() }
		}, func(r *row, during, after []record) []string {
			r.note = fmt.Sprintf("its share %.0f%% → %.0f%% after; ejected %d×", 100*r.during.share(victim.registered),
				100*r.after.share(victim.registered), ejections(target, victim.registered)-before)
			return inner(r, during, after)
		})
		s.recycle(l, victim)
	}
	backendFault("backend hangs", "hang", "deadline-bound", m.deadline, func(v *proc) func(*row, []record, []record) []string {
		return s.unresponsive(func() *proc { return v }, n, &tHeal)
	})
	backendFault("backend 10× slower", "slow", "0 failed, share < fair (< half if 10× measured)", m.longDeadline, func(v *proc) func(*row, []record, []record) []string {
		return func(r *row, during, after []record) []string {
			out := zero(r, during, after)
			if p := slowShare("slow server", v.registered, n, r, during); p != "" {
				out = append(out, p)
			}
			return out
		}
	})
	backendFault("backend returns errors", "errors", "retried; ejected", m.longDeadline, func(v *proc) func(*row, []record, []record) []string {
		before := ejections(target, v.registered)
		return func(r *row, during, after []record) []string {
			var out []string
			// Unavailable is retried elsewhere for idempotent methods:
			// a failure reaches the caller only if the budget ran dry.
			if f := failures(during, after); len(f) > r.during.calls/100 {
				out = append(out, fmt.Sprintf("%d failed calls, want at most 1%% of %d", len(f), r.during.calls))
			}
			if got := ejections(target, v.registered); got <= before {
				out = append(out, "the failing endpoint was not ejected")
			}
			return out
		}
	})
	backendFault("handler panics", "panic", "Internal on it only; ejected; no crash", m.longDeadline, func(v *proc) func(*row, []record, []record) []string {
		before := ejections(target, v.registered)
		return func(r *row, during, after []record) []string {
			var out []string
			f := failures(during, after)
			// Internal is not retried (the handler may have run): the
			// calls it takes before its ejection fail.
			if len(f) > 20 {
				out = append(out, fmt.Sprintf("%d failed calls, want at most 20 (ejection after 5 in a row)", len(f)))
			}
			for _, c := range f {
				if c.code != codes.Internal || c.peer != v.registered {
					out = append(out, fmt.Sprintf("a call failed with %v on %s, want Internal on %s", c.code, c.peer, v.registered))
					break
				}
			}
			if got := ejections(target, v.registered); got <= before {
				out = append(out, "the panicking endpoint was not ejected")
			}
			if !v.alive() {
				out = append(out, "the server process crashed")
			}
			return out
		}
	})

	// Network faults between the client and a fourth server, behind a
	// proxy.
	px, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close() // idempotent: closed below, before counting goroutines
	behind := s.start("s4 (proxied)", px.Addr())
	px.SetTarget(behind.addr)
	n = 4
	s.fault(l, "network: +50ms latency", "0 failed, share < fair (< half if 10× measured)", m.longDeadline, m.hold, func() func() {
		px.Delay(25 * time.Millisecond) // each way
		return func() { px.Delay(0) }
	}, func(r *row, during, after []record) []string {
		out := zero(r, during, after)
		r.note = fmt.Sprintf("its share %.0f%% → %.0f%% after", 100*r.during.share(behind.registered), 100*r.after.share(behind.registered))
		if p := slowShare("slow link", behind.registered, n, r, during); p != "" {
			out = append(out, p)
		}
		return out
	})
	s.fault(l, "network: connection cut", "≤ in flight", m.longDeadline, m.deadline, func() func() {
		tFault = time.Now()
		px.Cut()
		return nil
	}, inFlightOnly(func() time.Time { return tFault }))
	s.fault(l, "network: black hole", "deadline-bound", m.deadline, m.hold, func() func() {
		px.Pause()
		return func() { px.Resume(); tHeal = time.Now() }
	}, s.unresponsive(func() *proc { return behind }, n, &tHeal))
	s.stop(behind)
	n = 3
	l.Stop()

	// Discovery through DNS SRV: the test plays the DNS operator (as a
	// headless Kubernetes service would), listing the servers in service.
	dns := dnstest.Start(t)
	publish := func() {
		var recs []dnstest.SRV
		for _, p := range s.live() {
			host, port, _ := net.SplitHostPort(p.registered)
			pn, _ := strconv.Atoi(port)
			dns.SetHost(p.name+".faults.test", host)
			recs = append(recs, dnstest.SRV{Priority: 10, Weight: 10, Port: uint16(pn), Target: p.name + ".faults.test", TTL: 1})
		}
		dns.SetSRV(srvName, recs...)
	}
	publish()
	drb, err := dnssrv.NewBuilder(dnssrv.WithServer(dns.Addr()), dnssrv.WithRefresh(100*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	const dnsTarget = "dnssrv:///" + srvName
	dconn, err := client.New(dnsTarget, grpckit.WithInsecure(), grpckit.WithLogger(quiet), grpckit.WithAccessLog(false),
		client.WithIdempotent(method),
		client.WithDialOptions(grpc.WithResolvers(drb), grpc.WithDefaultServiceConfig(lbConfig)))
	if err != nil {
		t.Fatal(err)
	}
	defer dconn.Close()
	dl := startLoad(dconn, m.rate, m.deadline, 2)
	defer dl.Stop()
	s.fault(dl, "DNS SRV: server killed (SIGKILL)", "≤ in flight", m.longDeadline, m.deadline, func() func() {
		victim := s.live()[0]
		tFault = time.Now()
		s.signal(victim, syscall.SIGKILL)
		victim.killed = true
		<-victim.exited
		s.replacement(victim)
		publish()
		return nil
	}, inFlightOnly(func() time.Time { return tFault }))
	s.fault(dl, "DNS SRV: DNS server failing", "0 failed", m.longDeadline, m.hold, func() func() {
		dns.SetFailure(srvName, dnstest.ServFail)
		return func() { dns.SetFailure(srvName, dnstest.OK) }
	}, zero)
	dl.Stop()

	// Every server left stops gracefully; none crashed.
	for _, p := range s.live() {
		s.stop(p)
	}
	for _, p := range s.procs {
		if !p.killed && p.err != nil {
			t.Errorf("server %s: %v, want exit 0", p.name, p.err)
		}
	}
	dconn.Close()
	conn.Close()
	px.Close()
	dns.Close()
	if !wait.Poll(30*time.Second, func() bool { return ours() <= goroutines }) {
		t.Errorf("grpckit's goroutines: got %d, want at most the %d before the suite:\n%s", ours(), goroutines, stacks())
	}
}

// ours counts the goroutines running or started by grpckit's code (the
// embedded etcd and its client are the test's, and stay).
func ours() int { return len(ourStacks()) }

func ourStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/grpckit/grpckit/") && !strings.Contains(g, "faultsuite.TestFaults(") &&
			!strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

func stacks() string { return strings.Join(ourStacks(), "\n\n") }

func (s *suite) report(took time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "fault suite (%s mode: %.0f calls/s open-loop Poisson, deadline %v (%v under deadline-bound faults), faults held %v, after-window %v; took %v)\n",
		s.m.name, s.m.rate, s.m.longDeadline, s.m.deadline, s.m.hold, s.m.after, took.Round(time.Second))
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tcalls\tfailed\tcodes\tduring p50/p99/p99.9\tafter p50/p99/p99.9\tin flight\trecovery\tbudget\tnote\t")
	for _, r := range s.rows {
		rec := "-"
		if r.recovery > 0 {
			rec = r.recovery.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s: %s\t%s\t\n", r.fault, r.during.calls+r.after.calls,
			r.during.nFailed+r.after.nFailed, mergeCodes(r.during, r.after), r.during.percentiles(), r.after.percentiles(),
			r.inflight, rec, r.budget, r.result, r.note)
	}
	_ = tw.Flush()
	fmt.Print(b.String())
	s.t.Log("\n" + b.String())
	if f := os.Getenv("GRPCKIT_FAULTS_OUT"); f != "" {
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			s.t.Errorf("GRPCKIT_FAULTS_OUT: %v", err)
		}
	}
}

func mergeCodes(a, b stats) string {
	m := stats{failed: map[codes.Code]int{}}
	for c, n := range a.failed {
		m.failed[c] += n
		m.nFailed += n
	}
	for c, n := range b.failed {
		m.failed[c] += n
		m.nFailed += n
	}
	return m.codes()
}
