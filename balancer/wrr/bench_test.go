package wrr

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
)

var sink time.Time

// BenchmarkTimeNow is the yardstick for the pick path.
func BenchmarkTimeNow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = time.Now()
	}
}

// BenchmarkPickDone measures one Pick and its Done over endpoints of
// weights 1..10.
func BenchmarkPickDone(b *testing.B) {
	p := newPicker(nil, fakeReady(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	p.(*picker).g = p.(*picker).ready[0].EP.Group()
	info := balancer.PickInfo{FullMethodName: "/s/m", Ctx: context.Background()}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := p.Pick(info)
		r.Done(balancer.DoneInfo{})
	}
}
