package hedge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/hedge"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// BenchmarkTailLatency is the measurement: four backends answer in
// 1 ms, one of them in 50 ms 10% of the time; 4 workers make b.N calls in
// all, without hedging (bare grpc-go with grpckit's balancer; "all-fast":
// with no slow backend, the reference), and with
// hedges after a fixed 5 ms or after the 90th or 95th percentile of recent
// latency (the default budget: 10% plus 10 per second). It reports the
// latency percentiles the callers saw and the extra attempts the backends
// received, in percent of the calls; it asserts nothing. Run it with a
// fixed count, without the race detector:
//
//	go test -run '^$' -bench TailLatency -benchtime 5000x ./interceptors/hedge/
func BenchmarkTailLatency(b *testing.B) {
	for _, lb := range []string{"p2c", "wrr"} {
		for _, hc := range []struct {
			name string
			opts []hedge.Option // nil: no hedging
			fast bool           // no slow backend: the reference
		}{
			{"all-fast", nil, true},
			{"off", nil, false},
			{"fixed-5ms", []hedge.Option{hedge.WithDelay(5 * time.Millisecond)}, false},
			{"p95", []hedge.Option{hedge.WithPercentile(95, time.Millisecond, 100*time.Millisecond)}, false},
			{"p90", []hedge.Option{hedge.WithPercentile(90, time.Millisecond, 100*time.Millisecond)}, false},
		} {
			b.Run(lb+"/"+hc.name, func(b *testing.B) {
				var h *hedge.Hedger
				reg := prometheus.NewRegistry()
				if hc.opts != nil {
					h = newHedger(b, append(hc.opts, hedge.WithMethods(echoMethod), hedge.WithRegisterer(reg))...)
				}
				bs, c := cluster(b, 4, lb, h)
				for _, be := range bs {
					be.Handler = answerAfter(time.Millisecond)
				}
				if !hc.fast {
					bs[3].Faults.Sometimes(0.1, grpckittest.Fault{Delay: 50 * time.Millisecond})
				}
				ctx := grpckittest.Context(b, 10*time.Minute)
				run := func(n int) []time.Duration {
					const workers = 4
					lat := make([]time.Duration, n)
					var next atomic.Int64
					var wg sync.WaitGroup
					for range workers {
						wg.Go(func() {
							for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
								start := time.Now()
								if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
									b.Errorf("Echo: %v", err)
									return
								}
								lat[i] = time.Since(start)
							}
						})
					}
					wg.Wait()
					return lat
				}
				run(500) // warm up the balancer's and the hedger's statistics
				before := calls(bs)
				won, exhausted := counter(b, reg, "grpckit_hedge_won_total"), counter(b, reg, "grpckit_hedge_budget_exhausted_total")
				b.ResetTimer()
				lat := run(b.N)
				b.StopTimer()
				after := calls(bs)
				var attempts int64
				for i := range bs {
					attempts += after[i] - before[i]
				}
				slices.Sort(lat)
				q := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
				}
				b.ReportMetric(q(0.5), "p50-ms")
				b.ReportMetric(q(0.99), "p99-ms")
				b.ReportMetric(q(0.999), "p99.9-ms")
				b.ReportMetric(100*float64(attempts-int64(b.N))/float64(b.N), "extra-%")
				b.ReportMetric(100*(counter(b, reg, "grpckit_hedge_won_total")-won)/float64(b.N), "won-%")
				b.ReportMetric(100*(counter(b, reg, "grpckit_hedge_budget_exhausted_total")-exhausted)/float64(b.N), "refused-%")
				b.ReportMetric(0, "ns/op")
				if testing.Verbose() {
					b.Logf("%s: calls per backend %v", fmt.Sprint(lb, "/", hc.name), diff(before, after))
				}
			})
		}
	}
}

// answerAfter answers Echo calls after d.
func answerAfter(d time.Duration) func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return &echov1.EchoResponse{Message: req.GetMessage()}, nil
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

func diff(before, after []int64) []int64 {
	d := make([]int64, len(after))
	for i := range after {
		d[i] = after[i] - before[i]
	}
	return d
}

// BenchmarkInterceptor is the interceptor's own cost, with an invoker that
// answers at once (no network): a method that is not hedged (the fast path,
// which must not allocate), and a hedged method whose first attempt
// answers before the delay, fixed or a percentile of recent latency.
//
//	go test -run '^$' -bench Interceptor -benchmem ./interceptors/hedge/
func BenchmarkInterceptor(b *testing.B) {
	answer := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	for _, bc := range []struct {
		name   string
		method string
		opts   []hedge.Option
	}{
		{"not-hedged", "/grpckit.echo.v1.EchoService/Other", nil},
		{"hedged-fixed", echoMethod, []hedge.Option{hedge.WithDelay(time.Second)}},
		{"hedged-percentile", echoMethod, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHedger(b, append(bc.opts, hedge.WithMethods(echoMethod), hedge.WithRegisterer(prometheus.NewRegistry()))...)
			intercept := hedge.UnaryClientInterceptor(h)
			ctx := context.Background()
			req, reply := &echov1.EchoRequest{Message: "hi"}, &echov1.EchoResponse{}
			b.ReportAllocs()
			for b.Loop() {
				if err := intercept(ctx, bc.method, req, reply, nil, answer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
