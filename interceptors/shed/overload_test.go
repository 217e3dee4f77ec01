package shed_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/shed"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// capped serves at most workers calls at a time, each taking service; the
// others queue (as calls queue for a database pool or a CPU).
type capped struct {
	echov1.UnimplementedEchoServiceServer
	sem     chan struct{}
	service time.Duration
}

func (s *capped) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	defer func() { <-s.sem }()
	t := time.NewTimer(s.service)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// BenchmarkOverload offers 3× the capacity of a server (4 workers × 20 ms:
// 200 calls/s) as an open-loop Poisson stream of 600 calls/s for 4 s, with
// a 250 ms deadline per call, with and without shedding. It reports goodput
// (successful calls per second), the latency of successful calls from
// their intended send time (p50, p99, and p99 of the calls sent after the
// first second, once the shedder has measured the server) and the
// fractions shed and timed out.
// b.N is not used: run it with -benchtime 1x.
//
//	go test -run '^$' -bench Overload -benchtime 1x ./interceptors/shed/
func BenchmarkOverload(b *testing.B) {
	const (
		workers  = 4
		service  = 20 * time.Millisecond
		rate     = 600.0 // 3 × 200/s
		duration = 4 * time.Second
		deadline = 250 * time.Millisecond
	)
	for _, shedding := range []bool{false, true} {
		name := "without shedding"
		if shedding {
			name = "with shedding"
		}
		b.Run(name, func(b *testing.B) {
			var sh *shed.Shedder
			if shedding {
				var err error
				if sh, err = shed.New(shed.WithWindow(2*time.Second, 20)); err != nil {
					b.Fatal(err)
				}
			}
			c := serve(b, sh, &capped{sem: make(chan struct{}, workers), service: service})
			// Connect first.
			if _, err := c.Echo(context.Background(), &echov1.EchoRequest{Message: "x"}); err != nil {
				b.Fatal(err)
			}
			var (
				mu        sync.Mutex
				latencies []time.Duration
				steady    []time.Duration // calls sent after the first second
				ok, rej   atomic.Int64
				other     atomic.Int64
				otherErr  atomic.Value
				timedOut  atomic.Int64
				sent      int64
				wg        sync.WaitGroup
			)
			rng := rand.New(rand.NewPCG(1, 2))
			start := time.Now()
			next := start
			for next.Sub(start) < duration {
				next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				intended := next
				sent++
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithDeadline(context.Background(), intended.Add(deadline))
					defer cancel()
					_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "x"})
					switch status.Code(err) {
					case codes.OK:
						ok.Add(1)
						mu.Lock()
						l := time.Since(intended)
						latencies = append(latencies, l)
						if intended.Sub(start) >= time.Second {
							steady = append(steady, l)
						}
						mu.Unlock()
					case codes.ResourceExhausted:
						rej.Add(1)
					case codes.DeadlineExceeded:
						timedOut.Add(1)
					default:
						other.Add(1)
						otherErr.Store(err.Error())
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			slices.Sort(latencies)
			slices.Sort(steady)
			pctOf := func(l []time.Duration, p float64) float64 {
				if len(l) == 0 {
					return 0
				}
				return float64(l[int(p*float64(len(l)-1))]) / 1e6
			}
			pct := func(p float64) float64 { return pctOf(latencies, p) }
			b.ReportMetric(float64(ok.Load())/elapsed.Seconds(), "goodput/s")
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(pctOf(steady, 0.99), "steady-p99-ms")
			b.ReportMetric(float64(rej.Load())/float64(sent), "shed-frac")
			b.ReportMetric(float64(timedOut.Load())/float64(sent), "timeout-frac")
			if other.Load() > 0 {
				b.Logf("%s: %d calls failed otherwise, last: %v", name, other.Load(), otherErr.Load())
			}
			b.Logf("%s: sent %d, ok %d, shed %d, timed out %d, goodput %.0f/s, p50 %.1f ms, p99 %.1f ms, p99 after the first second %.1f ms",
				name, sent, ok.Load(), rej.Load(), timedOut.Load(), float64(ok.Load())/elapsed.Seconds(), pct(0.5), pct(0.99), pctOf(steady, 0.99))
		})
	}
}
