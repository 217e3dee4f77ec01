package p2c

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/balancer/internal/lb"
)

var sink time.Time

// BenchmarkTimeNow is the yardstick for the pick path: Pick + Done should
// cost at most twice as much.
func BenchmarkTimeNow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = time.Now()
	}
}

var sinkNs int64

// BenchmarkClock is one read of the monotonic clock the balancers use; Pick
// and Done read it once each, so twice this is the floor of BenchmarkPickDone.
func BenchmarkClock(b *testing.B) {
	for b.Loop() {
		sinkNs = lb.SystemClock()
	}
}

func benchPicker(n int) balancer.Picker {
	g := lb.NewGroup(lb.DefaultConfig(), nil)
	rs := make([]lb.Ready, n)
	for i := range rs {
		rs[i] = lb.Ready{EP: lb.NewEndpoint(g, fmt.Sprint(i), 1)}
	}
	return newPicker(g, rs)
}

// BenchmarkPickDone measures one Pick and its Done over 10 ready endpoints.
func BenchmarkPickDone(b *testing.B) {
	p := benchPicker(10)
	info := balancer.PickInfo{FullMethodName: "/s/m", Ctx: context.Background()}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := p.Pick(info)
		r.Done(balancer.DoneInfo{})
	}
}

// BenchmarkPickDoneParallel is BenchmarkPickDone from all Ps at once.
func BenchmarkPickDoneParallel(b *testing.B) {
	p := benchPicker(10)
	info := balancer.PickInfo{FullMethodName: "/s/m", Ctx: context.Background()}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, _ := p.Pick(info)
			r.Done(balancer.DoneInfo{})
		}
	})
}
