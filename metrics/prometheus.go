package metrics

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/grpckit/grpckit/internal/promreg"
	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus returns a provider that registers its metrics on reg: give it
// the registry the builders use (server.Server.Registry,
// client.Conn.Registry, or the one given to every builder with
// grpckit.WithMetrics) and the application's series appear on the same
// /metrics as grpckit's, beside the Go runtime and process series of
// grpckit.NewRegistry. Asking for a metric reg already holds with the same
// name, help and label names returns it, even when another provider
// registered it (a histogram keeps the buckets it was first registered
// with). Label values that are not valid UTF-8 have their invalid bytes
// replaced by U+FFFD. With a nil reg every method returns an error.
func Prometheus(reg prometheus.Registerer) Provider { return promProvider{reg} }

type promProvider struct{ reg prometheus.Registerer }

type promCounter struct {
	spec
	vec *prometheus.CounterVec
}

type promGauge struct {
	spec
	vec *prometheus.GaugeVec
}

type promHistogram struct {
	spec
	vec *prometheus.HistogramVec
}

func (c *promCounter) With(values ...string) CounterChild {
	c.checkValues(values)
	return c.vec.WithLabelValues(validUTF8(values)...)
}

func (g *promGauge) With(values ...string) GaugeChild {
	g.checkValues(values)
	return g.vec.WithLabelValues(validUTF8(values)...)
}

func (h *promHistogram) With(values ...string) HistogramChild {
	h.checkValues(values)
	return h.vec.WithLabelValues(validUTF8(values)...)
}

func (p promProvider) Counter(name, help string, labels ...string) (Counter, error) {
	s, err := newSpec(counterKind, name, help, nil, labels)
	if err != nil {
		return nil, err
	}
	vec, err := promRegister(p.reg, s, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, s.labels))
	if err != nil {
		return nil, err
	}
	return &promCounter{s, vec}, nil
}

func (p promProvider) Gauge(name, help string, labels ...string) (Gauge, error) {
	s, err := newSpec(gaugeKind, name, help, nil, labels)
	if err != nil {
		return nil, err
	}
	vec, err := promRegister(p.reg, s, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, s.labels))
	if err != nil {
		return nil, err
	}
	return &promGauge{s, vec}, nil
}

func (p promProvider) Histogram(name, help string, buckets []float64, labels ...string) (Histogram, error) {
	s, err := newSpec(histogramKind, name, help, buckets, labels)
	if err != nil {
		return nil, err
	}
	vec, err := promRegister(p.reg, s, prometheus.NewHistogramVec(
		prometheus.HistogramOpts{Name: name, Help: help, Buckets: s.buckets}, s.labels))
	if err != nil {
		return nil, err
	}
	return &promHistogram{s, vec}, nil
}

// promRegister registers c on reg, or returns the collector reg already
// holds for the same descriptor when it is of c's type.
func promRegister[C prometheus.Collector](reg prometheus.Registerer, s spec, c C) (C, error) {
	if reg == nil {
		return c, fmt.Errorf("metrics: %s %q: nil Prometheus registerer", s.kind, s.name)
	}
	held, err := promreg.Register(reg, c)
	if err == nil {
		return held, nil
	}
	if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		return c, fmt.Errorf("metrics: %s %q: already registered as another kind of metric", s.kind, s.name)
	}
	return c, fmt.Errorf("metrics: %s %q: %w", s.kind, s.name, err)
}

// validUTF8 returns values, or a copy of them made valid UTF-8: Prometheus
// panics on invalid label values.
func validUTF8(values []string) []string {
	for i, v := range values {
		if !utf8.ValidString(v) {
			values = slices.Clone(values)
			for j := i; j < len(values); j++ {
				values[j] = strings.ToValidUTF8(values[j], "\uFFFD")
			}
			return values
		}
	}
	return values
}
