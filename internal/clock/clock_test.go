package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	var f Fake
	c := FromTime(f.Now)
	a := c()
	f.Advance(1500 * time.Millisecond)
	if got, want := c()-a, int64(1500*time.Millisecond); got != want {
		t.Fatalf("advance: got %d ns, want %d", got, want)
	}
}

func TestRealMonotonic(t *testing.T) {
	a := Real()
	b := Real()
	if b < a {
		t.Fatalf("Real went backwards: got %d after %d", b, a)
	}
	if FromTime(nil)() < a {
		t.Fatalf("FromTime(nil) is not Real")
	}
}

func BenchmarkReal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Real()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = time.Now()
	}
}
