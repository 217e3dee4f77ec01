package main

// Scale (issue 17): the cost of resolver updates at 10,000 and 100,000
// endpoints, per balancer, driven through grpc's balancer API on a fake
// ClientConn that dials nothing.

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/balancer/wrr"
	"github.com/grpckit/grpckit/internal/lbfake"
	gkresolver "github.com/grpckit/grpckit/resolver"
)

// scaleBudget bounds the predicted time of one first update: a balancer
// whose first update at the next size is predicted to take longer (from
// its growth between the sizes measured before) is skipped there, with the
// prediction in ScaleRow.Skipped.
const scaleBudget = 60 * time.Second

// scaleChanges is how many times each changed update is applied (A→B, B→A,
// ...); its figures are the medians.
const scaleChanges = 4

// ScaleRow is one balancer at one number of endpoints. Each update's cost
// includes the SubConn state changes it causes (the fake ClientConn makes a
// SubConn CONNECTING then READY when the balancer connects it, and delivers
// these before the clock stops). First is the first update after Build;
// OneChanged replaces one endpoint by a new address, OnePercent replaces 1%
// of them; both are medians over scaleChanges updates back and forth.
// Allocs and Bytes are runtime.MemStats Mallocs and TotalAlloc deltas.
type ScaleRow struct {
	Balancer  string
	Endpoints int

	First, OneChanged, OnePercent                   time.Duration
	FirstAllocs, OneChangedAllocs, OnePercentAllocs uint64
	FirstBytes, OneChangedBytes, OnePercentBytes    uint64

	// SubConns is the number of SubConns the first update created;
	// OnePercentSubConns the number one 1% update created.
	SubConns, OnePercentSubConns int
	// State is the balancer's state after the first update.
	State connectivity.State
	// Skipped, when set, says why the row was not measured.
	Skipped string
}

type scaleBalancer struct{ label, name, cfg string }

// Row names.
const (
	scaleGrpckitP2C = "grpckit p2c"
	scaleGrpckitWRR = "grpckit wrr"
	scaleRoundRobin = "grpc-go round_robin"
	scalePickFirst  = "grpc-go pick_first"
	scaleGoZeroP2C  = "go-zero p2c_ewma"
)

func scaleBalancers() []scaleBalancer {
	return []scaleBalancer{
		{label: scaleGrpckitP2C, name: p2c.Name, cfg: `{}`},
		{label: scaleGrpckitWRR, name: wrr.Name, cfg: `{}`},
		{label: scaleRoundRobin, name: roundrobin.Name},
		{label: scalePickFirst, name: pickfirst.Name, cfg: `{}`},
		// Registered by zrpc (imported by tail.go).
		{label: scaleGoZeroP2C, name: "p2c_ewma"},
	}
}

// scaleAddr is the made-up address of endpoint k; nothing dials it.
func scaleAddr(k int) string {
	return fmt.Sprintf("203.%d.%d.%d:443", k>>16&255, k>>8&255, k&255)
}

// scaleState returns the resolver state of endpoints ks as a grpc channel
// hands it to its balancer: Endpoints (with grpckit's weight attribute, as
// grpckit's resolvers set it) and, for balancers built on grpc's base
// balancer, which read only Addresses, the same addresses.
func scaleState(ks []int, cfg serviceconfig.LoadBalancingConfig) grpcbalancer.ClientConnState {
	eps := make([]resolver.Endpoint, len(ks))
	addrs := make([]resolver.Address, len(ks))
	for i, k := range ks {
		a := scaleAddr(k)
		eps[i] = gkresolver.ToGRPC(gkresolver.Endpoint{Addr: a, Weight: 1})
		addrs[i] = resolver.Address{Addr: a}
	}
	return grpcbalancer.ClientConnState{ResolverState: resolver.State{Endpoints: eps, Addresses: addrs}, BalancerConfig: cfg}
}

// scaleMeasure runs f after a GC and returns its wall time and the
// allocations the process made meanwhile.
func scaleMeasure(f func()) (d time.Duration, allocs, bytes uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	d = time.Since(start)
	runtime.ReadMemStats(&after)
	return d, after.Mallocs - before.Mallocs, after.TotalAlloc - before.TotalAlloc
}

// runScale measures each balancer's updates at each size in sizes
// (ascending). A balancer whose first update at a size is predicted to take
// longer than scaleBudget is skipped there; the prediction extrapolates the
// growth between the two sizes measured before it (or assumes quadratic
// growth after a single one).
func runScale(sizes []int) ([]ScaleRow, error) { return runScaleBudget(sizes, scaleBudget) }

func runScaleBudget(sizes []int, budget time.Duration) ([]ScaleRow, error) {
	sizes = slices.Sorted(slices.Values(sizes))
	for _, n := range sizes {
		if n < 100 {
			return nil, fmt.Errorf("bench: scale: got %d endpoints, want at least 100", n)
		}
	}
	var rows []ScaleRow
	for _, sb := range scaleBalancers() {
		type point struct {
			n int
			d time.Duration
		}
		var seen []point
		for _, n := range sizes {
			if len(seen) > 0 {
				last := seen[len(seen)-1]
				exp := 2.0
				if len(seen) > 1 {
					prev := seen[len(seen)-2]
					exp = math.Log(float64(last.d)/float64(prev.d)) / math.Log(float64(last.n)/float64(prev.n))
					if math.IsNaN(exp) || exp < 1 {
						exp = 1
					}
				}
				// In float seconds: a Duration would overflow.
				if pred := last.d.Seconds() * math.Pow(float64(n)/float64(last.n), exp); pred > budget.Seconds() {
					rows = append(rows, ScaleRow{Balancer: sb.label, Endpoints: n, Skipped: fmt.Sprintf(
						"first update predicted ~%s (%s at %d endpoints, growth ~n^%.1f), over the %v budget",
						scaleSeconds(pred), scaleDur(last.d), last.n, exp, budget)})
					continue
				}
			}
			row, err := scaleOne(sb, n)
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
			seen = append(seen, point{n, row.First})
		}
	}
	return rows, nil
}

// scaleSeconds formats a predicted time.
func scaleSeconds(s float64) string {
	switch {
	case s >= 3600:
		return fmt.Sprintf("%.0f h", s/3600)
	case s >= 60:
		return fmt.Sprintf("%.0f min", s/60)
	default:
		return fmt.Sprintf("%.0f s", s)
	}
}

// scaleOne measures one balancer at n endpoints.
func scaleOne(sb scaleBalancer, n int) (ScaleRow, error) {
	row := ScaleRow{Balancer: sb.label, Endpoints: n}
	builder := grpcbalancer.Get(sb.name)
	if builder == nil {
		return row, fmt.Errorf("bench: scale: balancer %q is not registered", sb.name)
	}
	var cfg serviceconfig.LoadBalancingConfig
	if p, ok := builder.(grpcbalancer.ConfigParser); ok && sb.cfg != "" {
		c, err := p.ParseConfig([]byte(sb.cfg))
		if err != nil {
			return row, fmt.Errorf("bench: scale: %s: %w", sb.label, err)
		}
		cfg = c
	}
	base := make([]int, n)
	for i := range base {
		base[i] = i
	}
	// One changed: endpoint n/2 replaced by a new address. 1%: the first
	// n/100 replaced by new addresses.
	one := slices.Clone(base)
	one[n/2] = n
	pct := slices.Clone(base)
	for i := range n / 100 {
		pct[i] = n + 1 + i
	}
	mk := func(ks []int) grpcbalancer.ClientConnState { return scaleState(ks, cfg) }
	sA, sOne, sPct := mk(base), mk(one), mk(pct)

	cc := &lbfake.FakeCC{ReportShutdown: true}
	bal := builder.Build(cc, grpcbalancer.BuildOptions{})
	defer bal.Close()
	var uerr error
	update := func(s grpcbalancer.ClientConnState) func() {
		return func() {
			if err := bal.UpdateClientConnState(s); err != nil && uerr == nil {
				uerr = err
			}
			cc.Flush()
		}
	}
	row.First, row.FirstAllocs, row.FirstBytes = scaleMeasure(update(sA))
	row.SubConns = cc.Created
	row.State = cc.State.ConnectivityState
	if uerr != nil {
		return row, fmt.Errorf("bench: scale: %s at %d: first update: %w", sb.label, n, uerr)
	}
	changed := func(next grpcbalancer.ClientConnState) (time.Duration, uint64, uint64, int) {
		var ds []time.Duration
		var as, bs []float64
		var created []float64
		for i := range scaleChanges {
			s := next
			if i%2 == 1 {
				s = sA
			}
			c0 := cc.Created
			d, a, b := scaleMeasure(update(s))
			ds = append(ds, d)
			as, bs = append(as, float64(a)), append(bs, float64(b))
			created = append(created, float64(cc.Created-c0))
		}
		return quantile(ds, 0.5), uint64(quantile(as, 0.5)), uint64(quantile(bs, 0.5)), int(quantile(created, 0.5))
	}
	row.OneChanged, row.OneChangedAllocs, row.OneChangedBytes, _ = changed(sOne)
	row.OnePercent, row.OnePercentAllocs, row.OnePercentBytes, row.OnePercentSubConns = changed(sPct)
	if uerr != nil {
		return row, fmt.Errorf("bench: scale: %s at %d: %w", sb.label, n, uerr)
	}
	return row, nil
}

// scaleMarkdown renders rows as a Markdown table.
func scaleMarkdown(rows []ScaleRow) string {
	var sb strings.Builder
	sb.WriteString("| balancer | endpoints | first update | allocs | MB | one changed | allocs | KB | 1% changed | allocs | KB | SubConns (first) | SubConns (per 1% update) |\n")
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		if r.Skipped != "" {
			fmt.Fprintf(&sb, "| %s | %d | skipped: %s | | | | | | | | | | |\n", r.Balancer, r.Endpoints, r.Skipped)
			continue
		}
		fmt.Fprintf(&sb, "| %s | %d | %s | %d | %.1f | %s | %d | %.1f | %s | %d | %.1f | %d | %d |\n",
			r.Balancer, r.Endpoints,
			scaleDur(r.First), r.FirstAllocs, float64(r.FirstBytes)/(1<<20),
			scaleDur(r.OneChanged), r.OneChangedAllocs, float64(r.OneChangedBytes)/(1<<10),
			scaleDur(r.OnePercent), r.OnePercentAllocs, float64(r.OnePercentBytes)/(1<<10),
			r.SubConns, r.OnePercentSubConns)
	}
	return sb.String()
}

// scaleDur formats d with three significant figures in a unit that suits it.
func scaleDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	}
}
