package budget

import (
	"testing"
	"time"

	"github.com/grpckit/grpckit/internal/clock"
)

func TestBucket(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ratio     float64
		floor     float64
		calls     int
		wantSpent int
	}{
		{"10% of 100 calls", 0.1, 0, 100, 10},
		{"25% of 100 calls", 0.25, 0, 100, 25},
		{"none", 0, 0, 100, 0},
		{"floor only", 0, 5, 100, 5},
		{"ratio and floor", 0.1, 5, 100, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fc clock.Fake
			b := New(tc.ratio, tc.floor, clock.FromTime(fc.Now))
			for range tc.calls {
				b.Fill()
			}
			spent := 0
			for b.Spend() {
				spent++
			}
			if spent != tc.wantSpent {
				t.Errorf("spent: got %d, want %d", spent, tc.wantSpent)
			}
		})
	}
}

func TestFloorRefills(t *testing.T) {
	var fc clock.Fake
	b := New(0, 2, clock.FromTime(fc.Now))
	for b.Spend() {
	}
	if b.Spend() {
		t.Fatal("Spend after the floor was spent: got true, want false")
	}
	fc.Advance(500 * time.Millisecond)
	if !b.Spend() {
		t.Error("Spend half a second later: got false, want true")
	}
}

func TestCapacity(t *testing.T) {
	b := New(1, 0, nil)
	for range 5000 {
		b.Fill()
	}
	if got, capacity := b.Available(); got != 1000 || capacity != 1000 {
		t.Errorf("Available: got %v of %v, want 1000 of 1000", got, capacity)
	}
}
