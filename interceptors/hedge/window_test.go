package hedge

import (
	"testing"
	"time"
)

func TestWindowPercentile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		samples int
		p       float64
		want    time.Duration // samples are 1 ms, 2 ms, ... in order
		ok      bool
	}{
		{"before the first refresh", refreshEvery - 1, 90, 0, false},
		{"first refresh", refreshEvery, 50, 32 * time.Millisecond, true},
		{"p90 of 1000", 1000 - 1000%refreshEvery, 90, 864 * time.Millisecond, true},
		// The ring holds the last windowSize samples: 2048 samples leave
		// 1025..2048 ms, whose median is 1536 ms.
		{"window slides", 2 * windowSize, 50, 1536 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &window{}
			for i := 1; i <= tc.samples; i++ {
				w.add(time.Duration(i)*time.Millisecond, tc.p)
			}
			got, ok := w.percentile()
			if ok != tc.ok || got != tc.want {
				t.Errorf("percentile: got %v, %v, want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		lat  time.Duration // every sample
		n    int
		want time.Duration
		// measured: the delay comes from the window (Snapshot's Measured).
		measured bool
	}{
		{"fixed", []Option{WithDelay(7 * time.Millisecond)}, 0, 0, 7 * time.Millisecond, false},
		{"warming up: max", []Option{WithPercentile(90, time.Millisecond, 300*time.Millisecond)}, 5 * time.Millisecond, 10, 300 * time.Millisecond, false},
		{"percentile", []Option{WithPercentile(90, time.Millisecond, 300*time.Millisecond)}, 5 * time.Millisecond, 64, 5 * time.Millisecond, true},
		{"below min", []Option{WithPercentile(90, 10*time.Millisecond, 300*time.Millisecond)}, 5 * time.Millisecond, 64, 10 * time.Millisecond, true},
		{"above max", []Option{WithPercentile(90, time.Millisecond, 3*time.Millisecond)}, 5 * time.Millisecond, 64, 3 * time.Millisecond, true},
		{"default", nil, 20 * time.Millisecond, 64, 20 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			w := h.stats("/s.S/M").win
			for range tc.n {
				w.add(tc.lat, h.cfg.pct)
			}
			if got := h.delay(w); got != tc.want {
				t.Errorf("delay: got %v, want %v", got, tc.want)
			}
			st := h.Snapshot()
			if len(st.Methods) != 1 || st.Methods[0].Delay != tc.want || st.Methods[0].Measured != tc.measured {
				t.Errorf("Snapshot().Methods: got %+v, want /s.S/M with delay %v, measured %v", st.Methods, tc.want, tc.measured)
			}
		})
	}
}

func BenchmarkWindowAdd(b *testing.B) {
	w := &window{}
	b.ReportAllocs()
	for b.Loop() {
		w.add(time.Millisecond, 95)
	}
}
