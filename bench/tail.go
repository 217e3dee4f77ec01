package main

// Tail latency per balancer (issue 17): four loopback echo backends, one of
// them 10× slower, open-loop Poisson load, latency from the intended send
// time, six balancers run one after the other in rounds.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	kratosregistry "github.com/go-kratos/kratos/v2/registry"
	kratosselector "github.com/go-kratos/kratos/v2/selector"
	kratosp2c "github.com/go-kratos/kratos/v2/selector/p2c"
	kratoswrr "github.com/go-kratos/kratos/v2/selector/wrr"
	kratosgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	"github.com/zeromicro/go-zero/zrpc"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/balancer/leastrequest" // registers least_request_experimental
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/balancer/wrr"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// The experiment's constants. Service times are sleeps (a timer in the
// handler), so the backends never compete for the CPU and a backend's
// latency does not grow with its load: the slow backend adds 9 ms to every
// call it gets, and a balancer's tail is decided by how many calls it sends
// there (above 1% of them, the p99 is the slow backend's).
const (
	tailBackends    = 4
	tailFast        = time.Millisecond      // service time of the three fast backends
	tailSlow        = 10 * time.Millisecond // service time of the slow one: 10× slower
	tailCallTimeout = 2 * time.Second       // deadline of each call, from its intended send time
	tailReadyWait   = 5 * time.Second       // how long a client may take to become READY
	tailMessage     = "0123456789abcdef0123456789abcdef"
)

// TailConfig configures runTail.
type TailConfig struct {
	// Rate is the load in calls per second, Poisson arrivals.
	Rate float64
	// Duration is the measured time of one run of one balancer.
	Duration time.Duration
	// Repeats is the number of rounds; each round runs every balancer once,
	// in an order rotated by one each round, with the slow backend moved to
	// the next of the four addresses.
	Repeats int
	// Warmup is unmeasured load at the same rate before each run, so that
	// the latency-aware balancers have learnt the backends. 0: Duration/5,
	// at most 1 s.
	Warmup time.Duration
}

// TailRow is one balancer's result. The percentiles are the medians over
// the repeats of each run's percentile; Calls and Errors are totals over the
// repeats; SlowShare is the median over the repeats of the share of the
// calls a run sent to the slow backend.
type TailRow struct {
	Balancer       string
	P50, P99, P999 time.Duration
	Calls, Errors  int
	SlowShare      float64
	P99Runs        []time.Duration // each run's p99, in round order
	P999Runs       []time.Duration // each run's p99.9, in round order
	// OutlierRuns describes, per run, the calls slower than twice the slow
	// backend's service time and the span of their intended send times: a
	// burst of them within a few tens of milliseconds, spread over all
	// backends, is a stall of the machine rather than of a balancer.
	OutlierRuns   []string
	SlowShareRuns []float64 // each run's slow share, in round order
	ErrorCodes    map[codes.Code]int
}

// tailBalancer is one balancer under test: dial returns a client of the
// backends at addrs and a function that closes it and everything it
// started.
type tailBalancer struct {
	name string
	dial func(addrs []string) (*grpc.ClientConn, func(), error)
}

// Row names, in the order of the table.
const (
	tailGrpckitP2C   = "grpckit p2c"
	tailGrpckitWRR   = "grpckit wrr"
	tailRoundRobin   = "grpc-go round_robin"
	tailLeastRequest = "grpc-go least_request"
	tailKratosP2C    = "kratos p2c"
	tailGoZeroP2C    = "go-zero p2c_ewma"
)

func tailBalancers() []tailBalancer {
	return []tailBalancer{
		{tailGrpckitP2C, tailDialGRPC(p2c.Name, `{}`)},
		{tailGrpckitWRR, tailDialGRPC(wrr.Name, `{}`)},
		{tailRoundRobin, tailDialGRPC(roundrobin.Name, `{}`)},
		// choiceCount 2 is the default; written out to say what runs.
		{tailLeastRequest, tailDialGRPC("least_request_experimental", `{"choiceCount":2}`)},
		{tailKratosP2C, tailDialKratos},
		{tailGoZeroP2C, tailDialGoZero},
	}
}

// tailDialGRPC dials a grpc-go client whose manual resolver hands the
// balancer policy all the addresses as endpoints (grpckit's balancers and
// grpc-go's own). No interceptors: the client is bare grpc-go.
func tailDialGRPC(policy, cfg string) func(addrs []string) (*grpc.ClientConn, func(), error) {
	return func(addrs []string) (*grpc.ClientConn, func(), error) {
		// grpc.WithResolvers keeps the resolver to this ClientConn.
		r := manual.NewBuilderWithScheme("benchtail")
		eps := make([]resolver.Endpoint, len(addrs))
		for i, a := range addrs {
			eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: a}}}
		}
		r.InitialState(resolver.State{Endpoints: eps})
		cc, err := grpc.NewClient(r.Scheme()+":///echo",
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithResolvers(r),
			grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:%s}]}`, policy, cfg)))
		if err != nil {
			return nil, nil, err
		}
		return cc, func() { _ = cc.Close() }, nil
	}
}

// tailDialKratos dials a Kratos v2.8.3 client as Kratos's documentation
// shows: transport/grpc's DialInsecure with a "discovery:///" endpoint and a
// registry.Discovery, the p2c selector installed as Kratos's global selector
// (its gRPC balancer, "selector", builds its pickers from the global one;
// the default, wrr, which transport/grpc installs, is put back when the
// client is closed). Kratos's defaults otherwise: its client interceptor,
// a 2 s timeout per call, subset of 25, health checking on (the backends
// serve grpc.health.v1). The discovery debug log is off.
func tailDialKratos(addrs []string) (*grpc.ClientConn, func(), error) {
	kratosselector.SetGlobalSelector(kratosp2c.NewBuilder())
	d := &tailDiscovery{addrs: addrs}
	cc, err := kratosgrpc.DialInsecure(context.Background(),
		kratosgrpc.WithEndpoint("discovery:///echo"),
		kratosgrpc.WithDiscovery(d),
		kratosgrpc.WithPrintDiscoveryDebugLog(false))
	if err != nil {
		kratosselector.SetGlobalSelector(kratoswrr.NewBuilder())
		return nil, nil, err
	}
	return cc, func() {
		_ = cc.Close()
		kratosselector.SetGlobalSelector(kratoswrr.NewBuilder())
	}, nil
}

// tailDiscovery is a static Kratos registry.Discovery: its watchers return
// the instances once, then block until stopped.
type tailDiscovery struct{ addrs []string }

func (d *tailDiscovery) instances(name string) []*kratosregistry.ServiceInstance {
	ins := make([]*kratosregistry.ServiceInstance, len(d.addrs))
	for i, a := range d.addrs {
		ins[i] = &kratosregistry.ServiceInstance{ID: fmt.Sprint(i), Name: name, Endpoints: []string{"grpc://" + a}}
	}
	return ins
}

// GetService implements registry.Discovery.
func (d *tailDiscovery) GetService(_ context.Context, name string) ([]*kratosregistry.ServiceInstance, error) {
	return d.instances(name), nil
}

// Watch implements registry.Discovery.
func (d *tailDiscovery) Watch(ctx context.Context, name string) (kratosregistry.Watcher, error) {
	return &tailWatcher{ctx: ctx, ins: d.instances(name), stop: make(chan struct{})}, nil
}

// tailWatcher is a registry.Watcher. Kratos's resolver passes the context
// it cancels on Close, so ctx is kept here, as the interface asks.
type tailWatcher struct {
	ctx      context.Context
	ins      []*kratosregistry.ServiceInstance
	sent     bool
	stop     chan struct{}
	stopOnce sync.Once
}

// Next implements registry.Watcher.
func (w *tailWatcher) Next() ([]*kratosregistry.ServiceInstance, error) {
	if !w.sent {
		w.sent = true
		return w.ins, nil
	}
	select {
	case <-w.stop:
	case <-w.ctx.Done():
	}
	return nil, context.Canceled
}

// Stop implements registry.Watcher.
func (w *tailWatcher) Stop() error {
	w.stopOnce.Do(func() { close(w.stop) })
	return nil
}

// tailDialGoZero dials a go-zero v1.10.3 zrpc client with Endpoints (its
// "direct" resolver) and its default balancer, p2c_ewma. The configuration
// is built as a literal, so go-zero's client middlewares (tracing,
// duration log, Prometheus, breaker, timeout: on when the configuration is
// loaded with defaults) are off, like the other clients'.
func tailDialGoZero(addrs []string) (*grpc.ClientConn, func(), error) {
	c, err := zrpc.NewClient(zrpc.RpcClientConf{Endpoints: addrs, NonBlock: true})
	if err != nil {
		return nil, nil, err
	}
	cc := c.Conn()
	return cc, func() { _ = cc.Close() }, nil
}

// tailBackend is a loopback echo server with a sleep-based service time:
// grpckittest's echo backend with a delay on every call.
type tailBackend struct {
	grpckittest.Backend
	addr string
	srv  *grpc.Server
	done chan struct{}
}

// startTailBackend starts a plain grpc.NewServer on 127.0.0.1 serving the
// echo service and grpc.health.v1 (Kratos's client checks health).
func startTailBackend(delay time.Duration) (*tailBackend, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &tailBackend{addr: lis.Addr().String(), srv: grpc.NewServer(), done: make(chan struct{})}
	b.Faults.Always(grpckittest.Fault{Delay: delay})
	b.Register(b.srv)
	healthpb.RegisterHealthServer(b.srv, health.NewServer())
	go func() {
		defer close(b.done)
		_ = b.srv.Serve(lis)
	}()
	return b, nil
}

// Close stops the server at once and waits for Serve to return.
func (b *tailBackend) Close() {
	b.srv.Stop()
	<-b.done
}

// tailRecord is one call.
type tailRecord struct {
	intended time.Time
	latency  time.Duration // from the intended send time to the end
	code     codes.Code
	peer     string
}

// tailOpenLoop sends calls on a Poisson schedule at rate per second for d
// (or until ctx ends), each on its own goroutine with a deadline of
// tailCallTimeout from its intended send time, and returns when every call
// has ended. Latency is measured from the intended send time, so a sender
// or a scheduler that falls behind shows in the figures instead of hiding
// the tail (no coordinated omission).
func tailOpenLoop(ctx context.Context, ec echov1.EchoServiceClient, rate float64, d time.Duration, rng *rand.Rand) []tailRecord {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		recs []tailRecord
	)
	start := time.Now()
	next := start
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
loop:
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		if next.Sub(start) >= d {
			break
		}
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break loop
			}
		} else if ctx.Err() != nil {
			break
		}
		intended := next
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithDeadline(context.Background(), intended.Add(tailCallTimeout))
			var p peer.Peer
			_, err := ec.Echo(cctx, &echov1.EchoRequest{Message: tailMessage}, grpc.Peer(&p))
			r := tailRecord{intended: intended, latency: time.Since(intended), code: status.Code(err)}
			cancel()
			if p.Addr != nil {
				r.peer = p.Addr.String()
			}
			mu.Lock()
			recs = append(recs, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return recs
}

// tailRun is one run of one balancer.
type tailRun struct {
	p50, p99, p999 time.Duration
	calls, errors  int
	codes          map[codes.Code]int
	slowShare      float64
	outliers       string
}

// runTailOnce starts the backends (the slow one at index slow), dials the
// balancer, waits for READY, sends warm-up then measured load, and closes
// everything it started.
func runTailOnce(ctx context.Context, b tailBalancer, cfg TailConfig, slow int, seed uint64) (run tailRun, err error) {
	backends := make([]*tailBackend, 0, tailBackends)
	defer func() {
		for _, be := range backends {
			be.Close()
		}
	}()
	addrs := make([]string, tailBackends)
	for i := range tailBackends {
		delay := tailFast
		if i == slow {
			delay = tailSlow
		}
		be, err := startTailBackend(delay)
		if err != nil {
			return run, err
		}
		backends = append(backends, be)
		addrs[i] = be.addr
	}
	cc, closeClient, err := b.dial(addrs)
	if err != nil {
		return run, fmt.Errorf("%s: dial: %w", b.name, err)
	}
	defer closeClient()
	if err := tailWaitReady(ctx, cc); err != nil {
		return run, fmt.Errorf("%s: %w", b.name, err)
	}
	ec := echov1.NewEchoServiceClient(cc)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	tailOpenLoop(ctx, ec, cfg.Rate, cfg.warmup(), rng)
	recs := tailOpenLoop(ctx, ec, cfg.Rate, cfg.Duration, rng)
	if err := ctx.Err(); err != nil {
		return run, err
	}
	lat := make([]time.Duration, len(recs))
	run.codes = map[codes.Code]int{}
	okCalls, slowCalls := 0, 0
	for i, r := range recs {
		lat[i] = r.latency
		if r.code != codes.OK {
			run.errors++
			run.codes[r.code]++
			continue
		}
		okCalls++
		if r.peer == addrs[slow] {
			slowCalls++
		}
	}
	var (
		nOut, nOutFast int
		first, last    time.Time
	)
	for _, r := range recs {
		if r.latency > 2*tailSlow {
			nOut++
			if r.peer != addrs[slow] {
				nOutFast++
			}
			if first.IsZero() || r.intended.Before(first) {
				first = r.intended
			}
			if r.intended.After(last) {
				last = r.intended
			}
		}
	}
	run.outliers = "0"
	if nOut > 0 {
		run.outliers = fmt.Sprintf("%d (%d fast) in %v", nOut, nOutFast, last.Sub(first).Round(time.Millisecond))
	}
	slices.Sort(lat)
	run.calls = len(recs)
	run.p50, run.p99, run.p999 = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 0.999)
	if okCalls > 0 {
		run.slowShare = float64(slowCalls) / float64(okCalls)
	}
	return run, nil
}

// tailWaitReady connects cc and waits until it is READY.
func tailWaitReady(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, tailReadyWait)
	defer cancel()
	cc.Connect()
	for {
		s := cc.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !cc.WaitForStateChange(ctx, s) {
			return fmt.Errorf("not READY within %v: state %v", tailReadyWait, s)
		}
	}
}

func (c TailConfig) warmup() time.Duration {
	if c.Warmup > 0 {
		return c.Warmup
	}
	return min(c.Duration/5, time.Second)
}

// runTail measures the tail latency of every balancer against four
// loopback backends, one of them 10×
// slower. Each round runs every balancer once, for cfg.Duration after
// cfg.warmup() of unmeasured load, on fresh backends and a fresh client; the
// balancers run one at a time, in an order rotated each round, so the
// machine's drift spreads over all of them. Each row's percentiles are the
// medians over the rounds.
func runTail(ctx context.Context, cfg TailConfig) ([]TailRow, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Repeats < 1 {
		return nil, fmt.Errorf("bench: tail: got rate %v, duration %v, repeats %d; want all > 0", cfg.Rate, cfg.Duration, cfg.Repeats)
	}
	bals := tailBalancers()
	runs := make([][]tailRun, len(bals))
	for rep := range cfg.Repeats {
		for k := range bals {
			i := (k + rep) % len(bals)
			// One seed per round: within a round every balancer gets the
			// same arrival schedule.
			r, err := runTailOnce(ctx, bals[i], cfg, rep%tailBackends, uint64(rep+1))
			if err != nil {
				return nil, err
			}
			runs[i] = append(runs[i], r)
		}
	}
	rows := make([]TailRow, len(bals))
	for i, b := range bals {
		rs := runs[i]
		row := TailRow{Balancer: b.name, ErrorCodes: map[codes.Code]int{}}
		var p50, p99, p999 []time.Duration
		for _, r := range rs {
			p50, p99, p999 = append(p50, r.p50), append(p99, r.p99), append(p999, r.p999)
			row.P99Runs = append(row.P99Runs, r.p99)
			row.P999Runs = append(row.P999Runs, r.p999)
			row.OutlierRuns = append(row.OutlierRuns, r.outliers)
			row.SlowShareRuns = append(row.SlowShareRuns, r.slowShare)
			row.Calls += r.calls
			row.Errors += r.errors
			for c, n := range r.codes {
				row.ErrorCodes[c] += n
			}
		}
		row.P50, row.P99, row.P999 = quantile(p50, 0.5), quantile(p99, 0.5), quantile(p999, 0.5)
		row.SlowShare = quantile(slices.Clone(row.SlowShareRuns), 0.5)
		rows[i] = row
	}
	return rows, nil
}

func tailMs(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// tailMarkdown renders rows as a Markdown table (latencies in ms).
func tailMarkdown(rows []TailRow) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| balancer | p50 ms | p99 ms | p99.9 ms | slow backend share | calls | errors | p99 per run (ms) | p99.9 per run (ms) | slow share per run | calls > %v per run (on fast backends) in span |\n", 2*tailSlow)
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---|---|---|---|\n")
	for _, r := range rows {
		var p99s, p999s, shares []string
		for _, d := range r.P99Runs {
			p99s = append(p99s, tailMs(d))
		}
		for _, d := range r.P999Runs {
			p999s = append(p999s, tailMs(d))
		}
		for _, s := range r.SlowShareRuns {
			shares = append(shares, fmt.Sprintf("%.1f%%", 100*s))
		}
		errs := fmt.Sprint(r.Errors)
		if r.Errors > 0 {
			var parts []string
			for c, n := range r.ErrorCodes {
				parts = append(parts, fmt.Sprintf("%v:%d", c, n))
			}
			slices.Sort(parts)
			errs += " (" + strings.Join(parts, ", ") + ")"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %.1f%% | %d | %s | %s | %s | %s | %s |\n", r.Balancer,
			tailMs(r.P50), tailMs(r.P99), tailMs(r.P999), 100*r.SlowShare, r.Calls, errs,
			strings.Join(p99s, " "), strings.Join(p999s, " "), strings.Join(shares, " "), strings.Join(r.OutlierRuns, "; "))
	}
	return sb.String()
}
