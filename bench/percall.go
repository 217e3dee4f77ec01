package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// scenario is one workload of the per-call tables.
type scenario struct {
	inflight int
	stream   bool // bidi stream messages instead of unary calls
}

func (s scenario) kind() string {
	if s.stream {
		return "stream"
	}
	return "unary"
}

// scenarios are the workloads measured, in the order of the tables.
var scenarios = []scenario{{1, false}, {8, false}, {1, true}, {8, true}}

// sample is what one round of one configuration did, in totals.
type sample struct {
	ops, errs      int64
	cpu, wall      time.Duration
	mallocs, bytes uint64
	logBytes       int64
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warm makes n unary calls.
func warm(t *target, n int) error {
	req := &echov1.EchoRequest{Message: payload}
	for range n {
		if _, err := t.ec.Echo(context.Background(), req); err != nil {
			return fmt.Errorf("%s: warm-up call: %w", t.name, err)
		}
	}
	return nil
}

// round runs sc on t for d (or, with ops > 0, for ops operations per
// caller) and returns its totals. Streams are opened before the
// measurement starts and closed after it ends, so that a stream round
// measures messages only.
func (t *target) round(sc scenario, d time.Duration, ops int) sample {
	var (
		ready, measured, finished sync.WaitGroup
		start                     = make(chan struct{})
		deadline                  time.Time
		total, errs               atomic.Int64
	)
	for range sc.inflight {
		ready.Add(1)
		measured.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			var n, e int64
			var step func() error
			var done func()
			if sc.stream {
				ctx, cancel := context.WithCancel(context.Background())
				s, err := t.ec.BidiStream(ctx)
				req := &echov1.BidiStreamRequest{Message: payload}
				resp := &echov1.BidiStreamResponse{}
				step = func() error {
					if err != nil { // the stream broke: open another
						if s, err = t.ec.BidiStream(ctx); err != nil {
							return err
						}
					}
					if err = s.Send(req); err == nil {
						err = s.RecvMsg(resp)
					}
					return err
				}
				done = func() {
					if err == nil && s.CloseSend() == nil {
						for s.RecvMsg(resp) == nil {
						}
					}
					cancel()
				}
			} else {
				req := &echov1.EchoRequest{Message: payload}
				step = func() error {
					_, err := t.ec.Echo(context.Background(), req)
					return err
				}
				done = func() {}
			}
			ready.Done()
			<-start
			for i := 0; ; i++ {
				if ops > 0 && i == ops || ops == 0 && i%8 == 0 && time.Now().After(deadline) {
					break
				}
				n++
				if step() != nil {
					e++
				}
			}
			total.Add(n)
			errs.Add(e)
			measured.Done()
			done()
		}()
	}
	ready.Wait()
	if t.flush != nil {
		t.flush()
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	l0, c0, w0 := logSink.n.Load(), cpuNow(), time.Now()
	deadline = w0.Add(d)
	close(start)
	measured.Wait()
	w1, c1, l1 := time.Now(), cpuNow(), logSink.n.Load()
	runtime.ReadMemStats(&ms1)
	finished.Wait()
	return sample{
		ops: total.Load(), errs: errs.Load(),
		cpu: c1 - c0, wall: w1.Sub(w0),
		mallocs: ms1.Mallocs - ms0.Mallocs, bytes: ms1.TotalAlloc - ms0.TotalAlloc,
		logBytes: l1 - l0,
	}
}

// result is a configuration's cost per operation (unary call or stream
// message) in one scenario.
type result struct {
	name string
	sc   scenario
	// cpu and wall are medians over rounds of the per-operation figures;
	// wall is the round's duration divided by its operations (latency at
	// 1 in flight, inverse throughput at 8).
	cpu, wall time.Duration
	// ratio is the median over rounds of the round's CPU per operation
	// divided by bare grpc-go's in the same round; lo and hi are the
	// quartiles of those ratios.
	ratio, lo, hi float64
	// allocs and bytes are medians over rounds; logBytes is the total
	// logged over all rounds divided by all operations.
	allocs, bytes, logBytes float64
	ops, errs               int64
}

// measure runs sc on every target in rounds: in round r the targets run
// in turn starting with target r mod n, so that none always follows the
// same one. targets[0] is the reference of the ratios.
func measure(w io.Writer, targets []*target, sc scenario, rounds int, d time.Duration) []result {
	samples := make([][]sample, len(targets))
	for r := range rounds {
		for k := range targets {
			i := (r + k) % len(targets)
			samples[i] = append(samples[i], targets[i].round(sc, d, 0))
		}
		if w != nil && (r+1)%max(1, rounds/10) == 0 {
			fmt.Fprintf(w, "  %s, %d in flight: round %d/%d\n", sc.kind(), sc.inflight, r+1, rounds)
		}
	}
	return summarize(targets, sc, samples)
}

func summarize(targets []*target, sc scenario, samples [][]sample) []result {
	per := func(s sample, v float64) float64 { return v / float64(max(s.ops, 1)) }
	out := make([]result, len(targets))
	for i, ss := range samples {
		var cpu, wall, ratios, allocs, bytes []float64
		var ops, errs, logBytes int64
		for r, s := range ss {
			c := per(s, float64(s.cpu))
			cpu = append(cpu, c)
			wall = append(wall, per(s, float64(s.wall)))
			ratios = append(ratios, c/per(samples[0][r], float64(samples[0][r].cpu)))
			allocs = append(allocs, per(s, float64(s.mallocs)))
			bytes = append(bytes, per(s, float64(s.bytes)))
			ops, errs, logBytes = ops+s.ops, errs+s.errs, logBytes+s.logBytes
		}
		out[i] = result{
			name: targets[i].name, sc: sc,
			cpu:    time.Duration(quantile(cpu, 0.5)),
			wall:   time.Duration(quantile(wall, 0.5)),
			ratio:  quantile(ratios, 0.5),
			lo:     quantile(ratios, 0.25),
			hi:     quantile(ratios, 0.75),
			allocs: quantile(allocs, 0.5),
			bytes:  quantile(bytes, 0.5),
			ops:    ops, errs: errs,
			logBytes: float64(logBytes) / float64(max(ops, 1)),
		}
	}
	return out
}

// quantile returns the q-quantile of v, interpolating between the closest
// ranks (the median of an even count is the mean of the middle two); v is
// sorted in place. Every figure of the command goes through it.
func quantile[T ~int64 | ~float64](v []T, q float64) T {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	pos := q * float64(len(v)-1)
	i := int(pos)
	if i+1 >= len(v) {
		return v[len(v)-1]
	}
	return v[i] + T((pos-float64(i))*float64(v[i+1]-v[i]))
}
