package balancer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	grpcbalancer "google.golang.org/grpc/balancer"
	_ "google.golang.org/grpc/balancer/leastrequest" // registers least_request_experimental
	"google.golang.org/grpc/balancer/roundrobin"
	"google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/balancer/internal/lbtest"
	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/balancer/wrr"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	gkresolver "github.com/grpckit/grpckit/resolver"
)

const leastRequest = "least_request_experimental"

// tailResult is one open-loop run.
type tailResult struct {
	p50, p99, p999 time.Duration
	slowShare      float64
	calls          int
	errors         int
}

// openLoop sends calls on a Poisson schedule at rate per second for d and
// measures each call's latency from its intended send time, so that a
// stalled sender does not hide the tail (no coordinated omission).
func openLoop(echo echov1.EchoServiceClient, rate float64, d time.Duration) (lat []time.Duration, errs int) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	start := time.Now()
	next := start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next = next.Add(time.Duration(rand.ExpFloat64() / rate * float64(time.Second)))
		if next.Sub(start) >= d {
			break
		}
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			<-timer.C
		}
		intended := next
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "x"})
			cancel()
			l := time.Since(intended)
			mu.Lock()
			if err != nil {
				errs++
			} else {
				lat = append(lat, l)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, errs
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// runTail measures one balancer against backends bs, of which slow (or -1)
// is the slow one.
func runTail(b *testing.B, name string, bs []*lbtest.Backend, slow int, rate float64, warmup, d time.Duration) tailResult {
	c := lbtest.Dial(b, name, "", lbtest.Endpoints(bs))
	defer c.Close()
	echo := echov1.NewEchoServiceClient(c)
	openLoop(echo, rate, warmup)
	before := lbtest.Served(bs)
	lat, errs := openLoop(echo, rate, d)
	after := lbtest.Served(bs)
	slices.Sort(lat)
	r := tailResult{p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), p999: quantile(lat, 0.999), calls: len(lat), errors: errs}
	if slow >= 0 {
		var total int64
		for i := range after {
			total += after[i] - before[i]
		}
		r.slowShare = float64(after[slow]-before[slow]) / float64(total)
	}
	return r
}

func medianBy(rs []tailResult, f func(tailResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// BenchmarkSlowBackend is the tail-latency experiment. Each balancer gets
// its own four loopback backends with a sleep-based service time of 1ms, one
// of them 10ms (none in the all-fast case), and its own open-loop Poisson
// load of 500 calls/s; latency is measured from the intended send time. The
// balancers run at the same time, so that the machine's noise hits them
// alike; each run is 0.5s of warm-up and 2s of measurement, 3 runs per
// scenario, and the table shows the median of each quantile across runs. It
// takes about 20 seconds and runs only when -bench selects it.
func BenchmarkSlowBackend(b *testing.B) {
	const (
		rate   = 500.0
		warmup = 500 * time.Millisecond
		d      = 2 * time.Second
		runs   = 3
		fast   = time.Millisecond
		slow   = 10 * time.Millisecond
	)
	balancers := []string{roundrobin.Name, leastRequest, p2c.Name, wrr.Name}
	type key struct {
		scenario, name string
	}
	results := map[key][]tailResult{}
	scenarios := []string{"one-slow", "all-fast"}
	for range b.N {
		for run := 0; run < runs; run++ {
			for _, scenario := range scenarios {
				var (
					wg sync.WaitGroup
					mu sync.Mutex
				)
				for _, name := range balancers {
					bs := lbtest.Start(b, 4)
					slowIdx := -1
					for _, be := range bs {
						be.Delay.Store(int64(fast))
					}
					if scenario == "one-slow" {
						slowIdx = run % 4
						bs[slowIdx].Delay.Store(int64(slow))
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := runTail(b, name, bs, slowIdx, rate, warmup, d)
						mu.Lock()
						results[key{scenario, name}] = append(results[key{scenario, name}], r)
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
		}
	}
	b.StopTimer()
	p99 := func(r tailResult) float64 { return ms(r.p99) }
	rrFast := medianBy(results[key{"all-fast", roundrobin.Name}], p99)
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-8s %-13s %6s %6s %6s %7s %6s %4s  %s\n", "scenario", "balancer", "p50", "p99", "p99.9", "/rrFast", "slow%", "errs", "p99 per run (ms)")
	for _, scenario := range scenarios {
		for _, name := range balancers {
			rs := results[key{scenario, name}]
			errs := 0
			var runs []string
			for _, r := range rs {
				errs += r.errors
				runs = append(runs, fmt.Sprintf("%.1f", ms(r.p99)))
			}
			short := strings.TrimSuffix(name, "_experimental")
			m99 := medianBy(rs, p99)
			share := medianBy(rs, func(r tailResult) float64 { return 100 * r.slowShare })
			fmt.Fprintf(&sb, "%-8s %-13s %6.2f %6.2f %6.2f %7.2f %6.2f %4d  %s\n", scenario, short,
				medianBy(rs, func(r tailResult) float64 { return ms(r.p50) }), m99,
				medianBy(rs, func(r tailResult) float64 { return ms(r.p999) }), m99/rrFast, share, errs, strings.Join(runs, " "))
			b.ReportMetric(m99, scenario+"/"+short+"/p99-ms")
			if scenario == "one-slow" {
				b.ReportMetric(share, scenario+"/"+short+"/slow-%")
			}
		}
	}
	b.Log(sb.String())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fakeEndpoints returns n endpoints as a grpckit resolver hands them over
// (weight attribute attached), with made-up addresses that are never dialed:
// the fake ClientConn connects nothing. Each call builds fresh strings, as a
// resolver decoding its registry's answer does.
func fakeEndpoints(from, n int) []resolver.Endpoint {
	eps := make([]resolver.Endpoint, n)
	for i := range eps {
		k := from + i
		eps[i] = gkresolver.ToGRPC(gkresolver.Endpoint{Addr: fmt.Sprintf("203.%d.%d.%d:443", k>>16&255, k>>8&255, k&255), Weight: 1})
	}
	return eps
}

// BenchmarkScale drives each balancer through grpc's balancer API with a
// fake ClientConn whose SubConns become READY without dialing anything. One
// op is an update plus all the SubConn state changes it causes: the initial
// update of N endpoints, a 1% churn (1% of the endpoints replaced), an
// identical update. grpc's round_robin runs at 10,000 endpoints only (its
// initial update takes seconds there), and so does p2c-unsubset, p2c told to
// connect every endpoint (subsetSize = N), which shows what the subset buys.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, bc := range []struct{ label, name, cfg string }{
			{roundrobin.Name, roundrobin.Name, ""},
			{p2c.Name, p2c.Name, `{}`},
			{wrr.Name, wrr.Name, `{}`},
			{"p2c-unsubset", p2c.Name, fmt.Sprintf(`{"subsetSize":%d}`, n)},
		} {
			name := bc.label
			if (bc.name == roundrobin.Name || bc.label == "p2c-unsubset") && n > 10_000 {
				continue
			}
			builder := grpcbalancer.Get(bc.name)
			base := fakeEndpoints(0, n)
			churned := append(fakeEndpoints(0, n-n/100), fakeEndpoints(n, n/100)...)
			state := func(eps []resolver.Endpoint) grpcbalancer.ClientConnState {
				s := grpcbalancer.ClientConnState{ResolverState: resolver.State{Endpoints: eps}}
				if p, ok := builder.(grpcbalancer.ConfigParser); ok {
					cfg, err := p.ParseConfig([]byte(bc.cfg))
					if err != nil {
						b.Fatal(err)
					}
					s.BalancerConfig = cfg
				}
				return s
			}
			initial, churn, same := state(base), state(churned), state(fakeEndpoints(0, n))
			b.Run(fmt.Sprintf("%s/n=%d/initial", name, n), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					cc := &lbtest.FakeCC{}
					bal := builder.Build(cc, grpcbalancer.BuildOptions{})
					b.StartTimer()
					_ = bal.UpdateClientConnState(initial)
					cc.Flush()
					b.StopTimer()
					if cc.State.ConnectivityState.String() != "READY" {
						b.Fatalf("state after the initial update: got %v, want READY", cc.State.ConnectivityState)
					}
					bal.Close()
					b.StartTimer()
				}
			})
			for _, op := range []struct {
				name    string
				a, next grpcbalancer.ClientConnState
			}{{"churn-1pct", initial, churn}, {"identical", initial, same}} {
				b.Run(fmt.Sprintf("%s/n=%d/%s", name, n, op.name), func(b *testing.B) {
					cc := &lbtest.FakeCC{}
					bal := builder.Build(cc, grpcbalancer.BuildOptions{})
					defer bal.Close()
					_ = bal.UpdateClientConnState(op.a)
					cc.Flush()
					states := []grpcbalancer.ClientConnState{op.next, op.a}
					i := 0
					for b.Loop() {
						_ = bal.UpdateClientConnState(states[i%2])
						cc.Flush()
						i++
					}
					b.ReportMetric(float64(cc.Created), "subconns")
				})
			}
		}
	}
}
