// Package benchkit measures the per-call cost of grpckit configurations
// against bare grpc-go in the same process and run, as BENCHMARKING.md asks:
// real TCP on 127.0.0.1, a small payload, configurations interleaved in
// rounds, CPU from getrusage, allocations exact from runtime.MemStats. A
// configuration's CPU is compared with its reference's as the ratio of
// totals over all rounds and as the median of the per-round ratios.
package benchkit

import (
	"context"
	"math"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// Payload is the message every call carries: 32 bytes, to keep
// serialization out of the picture.
const Payload = "0123456789abcdef0123456789abcdef"

// Config is one configuration under test. Bare uses grpc.NewServer and
// grpc.NewClient with nothing but plaintext credentials.
type Config struct {
	Name   string
	Bare   bool
	Server []server.Option
	Client []client.Option
	// BareServer and BareDial are options of a Bare configuration's
	// grpc.NewServer and grpc.NewClient.
	BareServer []grpc.ServerOption
	BareDial   []grpc.DialOption
	// CallTimeout, when set, gives every call a deadline of its own, as a
	// caller's context.WithTimeout would.
	CallTimeout time.Duration
	// Ref names the configuration the ratios compare with. Default: the
	// first one.
	Ref string
}

// Result is a configuration's cost per call.
type Result struct {
	Name string
	Ref  string
	// CPUx and Wallx are the ratios to the reference of the totals over
	// all rounds; CPUxErr is half the difference between the CPU ratios of
	// the even and the odd rounds, a rough measure of their precision.
	CPUx, Wallx, CPUxErr float64
	// CPUxMedian is the median over rounds of the round's CPU ratio to
	// the reference's in the same round.
	CPUxMedian float64
	CPU        time.Duration // user+sys CPU per call, client and server together
	Wall       time.Duration
	Allocs     float64
	Bytes      float64
}

type target struct {
	cfg   Config
	ec    echov1.EchoServiceClient
	close func()
}

func start(tb testing.TB, cfg Config) *target {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := lis.Addr().String()
	var stopServer func()
	var conn grpc.ClientConnInterface
	var closeConn func() error
	if cfg.Bare {
		s := grpc.NewServer(cfg.BareServer...)
		echov1.RegisterEchoServiceServer(s, &grpckittest.Backend{})
		go func() { _ = s.Serve(lis) }()
		stopServer = s.Stop
		cc, err := grpc.NewClient("passthrough:///"+addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, cfg.BareDial...)...)
		if err != nil {
			tb.Fatal(err)
		}
		conn, closeConn = cc, cc.Close
	} else {
		s, err := server.New(append([]server.Option{grpckit.WithInsecure()}, cfg.Server...)...)
		if err != nil {
			tb.Fatal(err)
		}
		echov1.RegisterEchoServiceServer(s, &grpckittest.Backend{})
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Serve(lis) }()
		stopServer = func() { _ = s.Close(); <-done }
		cc, err := client.New("passthrough:///"+addr, append([]client.Option{grpckit.WithInsecure()}, cfg.Client...)...)
		if err != nil {
			tb.Fatal(err)
		}
		conn, closeConn = cc, cc.Close
	}
	t := &target{cfg: cfg, ec: echov1.NewEchoServiceClient(conn), close: func() { _ = closeConn(); stopServer() }}
	// Warm up: connect and fill pools.
	for range 200 {
		if _, err := t.ec.Echo(context.Background(), &echov1.EchoRequest{Message: Payload}); err != nil {
			tb.Fatalf("%s: warm-up call: %v", cfg.Name, err)
		}
	}
	return t
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type sample struct {
	cpu, wall     time.Duration
	allocs, bytes float64
}

// round makes calls unary calls (or stream messages with stream set) with
// inflight callers and returns the cost per call.
func (t *target) round(tb testing.TB, calls, inflight int, stream bool) sample {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	c0, w0 := cpuNow(), time.Now()
	var wg sync.WaitGroup
	per := calls / inflight
	errs := make(chan error, inflight)
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.work(per, stream); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	w1, c1 := time.Now(), cpuNow()
	runtime.ReadMemStats(&ms1)
	close(errs)
	for err := range errs {
		tb.Fatalf("%s: %v", t.cfg.Name, err)
	}
	n := float64(per * inflight)
	return sample{
		cpu:    time.Duration(float64(c1-c0) / n),
		wall:   time.Duration(float64(w1.Sub(w0)) / n),
		allocs: float64(ms1.Mallocs-ms0.Mallocs) / n,
		bytes:  float64(ms1.TotalAlloc-ms0.TotalAlloc) / n,
	}
}

func (t *target) work(n int, stream bool) error {
	ctx := context.Background()
	if !stream {
		req := &echov1.EchoRequest{Message: Payload}
		for range n {
			cctx, cancel := ctx, context.CancelFunc(func() {})
			if t.cfg.CallTimeout > 0 {
				cctx, cancel = context.WithTimeout(ctx, t.cfg.CallTimeout)
			}
			_, err := t.ec.Echo(cctx, req)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := t.ec.BidiStream(ctx)
	if err != nil {
		return err
	}
	req := &echov1.BidiStreamRequest{Message: Payload}
	resp := &echov1.BidiStreamResponse{}
	for range n {
		if err := s.Send(req); err != nil {
			return err
		}
		if err := s.RecvMsg(resp); err != nil {
			return err
		}
	}
	return s.CloseSend()
}

// Run measures every configuration in rounds (each configuration once per
// round, in turn) and returns their costs, in the order given.
func Run(tb testing.TB, cfgs []Config, rounds, calls, inflight int, stream bool) []Result {
	tb.Helper()
	targets := make([]*target, len(cfgs))
	for i, c := range cfgs {
		targets[i] = start(tb, c)
	}
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	samples := make([][]sample, len(cfgs))
	for i := range samples {
		samples[i] = make([]sample, rounds)
	}
	for r := range rounds {
		// Each round starts with the next configuration, so none is
		// always measured right after the same one.
		for k := range targets {
			i := (r + k) % len(targets)
			samples[i][r] = targets[i].round(tb, calls, inflight, stream)
		}
	}
	refOf := func(i int) int {
		for j, c := range cfgs {
			if cfgs[i].Ref != "" && c.Name == cfgs[i].Ref {
				return j
			}
		}
		return 0
	}
	out := make([]Result, len(cfgs))
	for i, s := range samples {
		ref := samples[refOf(i)]
		// Ratios of totals over the rounds: consecutive rounds of the same
		// workload differ by up to ±20% on this shared machine, and only
		// many short interleaved rounds average that out.
		ratio := func(get func(sample) float64, keep func(r int) bool) float64 {
			var a, b float64
			for r := range rounds {
				if keep(r) {
					a += get(s[r])
					b += get(ref[r])
				}
			}
			return a / b
		}
		cpu := func(x sample) float64 { return float64(x.cpu) }
		wall := func(x sample) float64 { return float64(x.wall) }
		all := func(int) bool { return true }
		even, odd := ratio(cpu, func(r int) bool { return r%2 == 0 }), ratio(cpu, func(r int) bool { return r%2 == 1 })
		perRound := make([]float64, rounds)
		for r := range rounds {
			perRound[r] = cpu(s[r]) / cpu(ref[r])
		}
		slices.Sort(perRound)
		med := perRound[rounds/2]
		if rounds%2 == 0 {
			med = (perRound[rounds/2-1] + med) / 2
		}
		out[i] = Result{
			CPUxMedian: med,
			Name:       cfgs[i].Name,
			Ref:        cfgs[i].Ref,
			CPUx:       ratio(cpu, all),
			Wallx:      ratio(wall, all),
			CPUxErr:    math.Abs(even-odd) / 2,
			CPU:        time.Duration(mean(s, cpu)),
			Wall:       time.Duration(mean(s, wall)),
			Allocs:     median(s, func(x sample) float64 { return x.allocs }, func(f float64) float64 { return f }),
			Bytes:      median(s, func(x sample) float64 { return x.bytes }, func(f float64) float64 { return f }),
		}
	}
	return out
}

func mean(s []sample, get func(sample) float64) float64 {
	var t float64
	for _, x := range s {
		t += get(x)
	}
	return t / float64(len(s))
}

func median[T any](s []sample, get func(sample) float64, conv func(float64) T) T {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = get(x)
	}
	slices.Sort(v)
	return conv(v[len(v)/2])
}

// Report logs a table of results relative to each one's reference (the
// first result unless Config.Ref names another) and reports each
// configuration's ratios as benchmark metrics.
func Report(b *testing.B, label string, res []Result) {
	b.Helper()
	byName := map[string]Result{}
	for _, r := range res {
		byName[r.Name] = r
	}
	first := res[0]
	b.Logf("%s (means; cpu× and wall×: ratios of totals over interleaved rounds, to %s unless named; ± is half the even/odd rounds' difference; med×: median of the per-round cpu ratios)", label, first.Name)
	b.Logf("%-34s %10s %13s %6s %10s %8s %9s %9s %9s  %s", "config", "cpu/call", "cpu×", "med×", "wall/call", "wall×", "allocs", "+allocs", "B/call", "vs")
	for _, r := range res {
		base, vs := first, ""
		if ref, ok := byName[r.Ref]; ok && r.Ref != "" {
			base, vs = ref, ref.Name
		}
		cpuX, wallX := r.CPUx, r.Wallx
		b.Logf("%-34s %10v %7.3f±%.3f %6.3f %10v %8.3f %9.1f %+9.1f %9.0f  %s", r.Name, r.CPU.Round(10*time.Nanosecond), cpuX, r.CPUxErr, r.CPUxMedian, r.Wall.Round(10*time.Nanosecond), wallX, r.Allocs, r.Allocs-base.Allocs, r.Bytes, vs)
		if r.Name != base.Name {
			unit := strings.NewReplacer(" ", "_", ",", "").Replace(r.Name)
			b.ReportMetric(cpuX, "cpu×/"+unit)
			b.ReportMetric(r.Allocs-base.Allocs, "+allocs/"+unit)
		}
	}
}
