package wrr

import (
	"context"
	"testing"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/internal/lbfake"
	"github.com/grpckit/grpckit/internal/pickhint"
)

func TestPickHint(t *testing.T) {
	for _, tc := range []struct {
		name     string
		weights  []uint32
		avoid    []string
		wantNot  string
		wantOnly string
	}{
		{"avoids the heaviest", []uint32{10, 1, 1}, []string{"0"}, "0", ""},
		{"avoids one of two", []uint32{1, 1}, []string{"1"}, "", "0"},
		{"all avoided: picks anyway", []uint32{1}, []string{"0"}, "", "0"},
		{"records only", []uint32{1, 2}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPicker(nil, fakeReady(tc.weights...)).(*picker)
			p.g = p.ready[0].EP.Group()
			lbfake.CheckHintedPicks(t, p, 100, tc.avoid, tc.wantNot, tc.wantOnly)
		})
	}
}

// BenchmarkPickDoneHinted is BenchmarkPickDone for a hedged attempt.
func BenchmarkPickDoneHinted(b *testing.B) {
	p := newPicker(nil, fakeReady(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	p.(*picker).g = p.(*picker).ready[0].EP.Group()
	h := &pickhint.Hint{Avoid: []string{"9"}}
	info := balancer.PickInfo{FullMethodName: "/s/m", Ctx: pickhint.NewContext(context.Background(), h)}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := p.Pick(info)
		r.Done(balancer.DoneInfo{})
	}
}
