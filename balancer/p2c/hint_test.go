package p2c

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/lbfake"
	"github.com/grpckit/grpckit/internal/pickhint"
)

func TestPickHint(t *testing.T) {
	clock := &fakeClock{}
	for _, tc := range []struct {
		name      string
		latencies []time.Duration
		avoid     []string
		wantNot   string // never picked
		wantOnly  string // always picked
	}{
		{"avoids the best", []time.Duration{time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}, []string{"a"}, "a", ""},
		{"avoids one of two", []time.Duration{time.Millisecond, 50 * time.Millisecond}, []string{"a"}, "", "b"},
		{"avoids two of three", []time.Duration{time.Millisecond, time.Millisecond, 50 * time.Millisecond}, []string{"a", "b"}, "", "c"},
		{"all avoided: picks anyway", []time.Duration{time.Millisecond}, []string{"a"}, "", "a"},
		{"records only", []time.Duration{time.Millisecond, time.Millisecond}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := pickerWith(t, clock, tc.latencies...)
			lbfake.CheckHintedPicks(t, p, 200, tc.avoid, tc.wantNot, tc.wantOnly)
		})
	}
}

// TestPickHintSpreads: among the endpoints not avoided, equal ones share the
// hedged attempts.
func TestPickHintSpreads(t *testing.T) {
	clock := &fakeClock{}
	p, _ := pickerWith(t, clock, time.Millisecond, time.Millisecond, time.Millisecond, time.Millisecond)
	counts := map[string]int{}
	for range 2000 {
		h := &pickhint.Hint{Avoid: []string{"a"}}
		r, err := p.Pick(balancer.PickInfo{Ctx: pickhint.NewContext(context.Background(), h)})
		if err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Millisecond)
		r.Done(balancer.DoneInfo{})
		counts[h.Picked()]++
	}
	for _, a := range []string{"b", "c", "d"} {
		if counts[a] < 400 {
			t.Errorf("picks of %s: got %d of 2000 (%v), want about a third", a, counts[a], counts)
		}
	}
	if counts["a"] != 0 {
		t.Errorf("picks of a: got %d, want 0", counts["a"])
	}
}

// BenchmarkPickDoneHinted is BenchmarkPickDone for a hedged attempt: the
// hint avoids one endpoint and records the pick.
func BenchmarkPickDoneHinted(b *testing.B) {
	p := benchPicker(10)
	h := &pickhint.Hint{Avoid: []string{"3"}}
	info := balancer.PickInfo{FullMethodName: "/s/m", Ctx: pickhint.NewContext(context.Background(), h)}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := p.Pick(info)
		r.Done(balancer.DoneInfo{})
	}
}

type ctxKey int

// BenchmarkPickDoneDeepContext is BenchmarkPickDone with a context eight
// values deep and no hint, as a real call's context is: the price of
// looking for the hint.
func BenchmarkPickDoneDeepContext(b *testing.B) {
	p := benchPicker(10)
	ctx := context.Background()
	for i := range 8 {
		ctx = context.WithValue(ctx, ctxKey(i), i)
	}
	info := balancer.PickInfo{FullMethodName: "/s/m", Ctx: ctx}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := p.Pick(info)
		r.Done(balancer.DoneInfo{})
	}
}

// TestLostAttemptObserved: an attempt that lost to a hedge and was
// cancelled counts as a latency observation; a plain cancel does not.
func TestLostAttemptObserved(t *testing.T) {
	for _, tc := range []struct {
		name string
		lost bool
	}{
		{"lost", true},
		{"caller cancel", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{}
			p, eps := pickerWith(t, clock, time.Millisecond)
			before := eps[0].Latency()
			h := &pickhint.Hint{}
			r, err := p.Pick(balancer.PickInfo{Ctx: pickhint.NewContext(context.Background(), h)})
			if err != nil {
				t.Fatal(err)
			}
			clock.advance(50 * time.Millisecond)
			if tc.lost {
				h.MarkLost()
			}
			r.Done(balancer.DoneInfo{Err: status.Error(codes.Canceled, "canceled")})
			got := eps[0].Latency()
			if tc.lost && got <= before {
				t.Errorf("latency: got %v ns, want more than %v (a 50 ms observation)", got, before)
			}
			if !tc.lost && got != before {
				t.Errorf("latency: got %v ns, want %v (unchanged)", got, before)
			}
		})
	}
}
