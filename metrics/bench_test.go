package metrics_test

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The hot path: a bound child. "prometheus-bare" is client_golang's
// counter without this package, for comparison.
func BenchmarkCounter(b *testing.B) {
	b.Run("prometheus-bare", func(b *testing.B) {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "C."}, []string{"op"}).WithLabelValues("sum")
		b.ReportAllocs()
		for b.Loop() {
			c.Inc()
		}
	})
	for i, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			p, _ := be.open(b, fmt.Sprintf("bench%d_", i))
			c, err := p.Counter("c_total", "C.", "op")
			if err != nil {
				b.Fatal(err)
			}
			child := c.With("sum")
			b.ReportAllocs()
			for b.Loop() {
				child.Inc()
			}
		})
	}
}

func BenchmarkHistogram(b *testing.B) {
	for i, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			p, _ := be.open(b, fmt.Sprintf("benchh%d_", i))
			h, err := p.Histogram("h_seconds", "H.", nil, "op")
			if err != nil {
				b.Fatal(err)
			}
			child := h.With("sum")
			b.ReportAllocs()
			for b.Loop() {
				child.Observe(0.3)
			}
		})
	}
}

func BenchmarkGauge(b *testing.B) {
	for i, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			p, _ := be.open(b, fmt.Sprintf("benchg%d_", i))
			g, err := p.Gauge("g", "G.", "op")
			if err != nil {
				b.Fatal(err)
			}
			child := g.With("sum")
			b.ReportAllocs()
			for b.Loop() {
				child.Add(1)
			}
		})
	}
}

// With on every call, as in c.With("sum").Inc(): the lookup's cost.
func BenchmarkWith(b *testing.B) {
	for i, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			p, _ := be.open(b, fmt.Sprintf("benchw%d_", i))
			c, err := p.Counter("c_total", "C.", "op")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.With("sum").Inc()
			}
		})
	}
}
