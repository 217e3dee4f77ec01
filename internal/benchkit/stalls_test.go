package benchkit_test

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkStalls measures the machine rather than grpckit: one goroutine
// per P spins reading the clock for 10 s (per b.N) and counts the gaps in
// which it did not run (the host or the kernel gave its CPU to someone
// else). A latency chain of a few milliseconds that meets such a gap grows
// by it, so their rate bounds the tail any latency figure here can reach:
// with 2 gaps of 1 ms or more a second, about 1 in 250 windows of 2 ms
// holds one. Run it before or after latency benchmarks, not at the same
// time (it keeps every CPU busy):
//
//	go test -run '^$' -bench Stalls -benchtime 1x ./internal/benchkit
func BenchmarkStalls(b *testing.B) {
	const span = 10 * time.Second
	n := runtime.GOMAXPROCS(0)
	var (
		mu                sync.Mutex
		over500, over1000 int
		longest           time.Duration
	)
	for range b.N {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var a, c int
				var m time.Duration
				last := time.Now()
				end := last.Add(span)
				for last.Before(end) {
					now := time.Now()
					if g := now.Sub(last); g >= 500*time.Microsecond {
						a++
						if g >= time.Millisecond {
							c++
						}
						m = max(m, g)
					}
					last = now
				}
				mu.Lock()
				over500, over1000, longest = over500+a, over1000+c, max(longest, m)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	secs := span.Seconds() * float64(b.N*n)
	b.ReportMetric(float64(over500)/secs, "gaps>=0.5ms/thread/s")
	b.ReportMetric(float64(over1000)/secs, "gaps>=1ms/thread/s")
	b.ReportMetric(float64(longest.Microseconds())/1000, "longest-gap-ms")
	b.ReportMetric(0, "ns/op")
}
