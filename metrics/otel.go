package metrics

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"

	otelruntime "go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// scope is the instrumentation scope of the OpenTelemetry meter.
const scope = "github.com/grpckit/grpckit/metrics"

// OTel returns a provider that records its metrics with OpenTelemetry
// instruments of one meter of mp (scope "github.com/grpckit/grpckit/metrics"),
// which its readers export, over OTLP or otherwise. Counters are
// Float64Counters, histograms Float64Histograms with the buckets as
// explicit bucket boundaries, and gauges Float64ObservableGauges whose
// values are kept by the provider and observed at each collection (an
// OpenTelemetry gauge cannot be added to). The help text is the
// instrument's description, the label names the attribute keys.
// Measurements carry no context, so no exemplar links a trace. Create one
// provider per MeterProvider: two would observe their gauges twice. With
// a nil mp every method returns an error.
//
// Go runtime metrics are not recorded by OTel: see [OTelRuntime].
func OTel(mp metric.MeterProvider) Provider {
	p := &otelProvider{}
	if mp != nil {
		p.meter = mp.Meter(scope)
	}
	return p
}

// OTelRuntime records the Go runtime's metrics (go.memory.used,
// go.goroutine.count, go.processor.limit, go.config.gogc and the others of
// OpenTelemetry's Go runtime semantic conventions) on mp with
// go.opentelemetry.io/contrib/instrumentation/runtime. Call it once per
// MeterProvider: the metrics cannot be removed, and a second call
// observes them twice.
func OTelRuntime(mp metric.MeterProvider) error {
	if mp == nil {
		return fmt.Errorf("metrics: OTelRuntime: nil MeterProvider")
	}
	if err := otelruntime.Start(otelruntime.WithMeterProvider(mp)); err != nil {
		return fmt.Errorf("metrics: OTelRuntime: %w", err)
	}
	return nil
}

type otelProvider struct {
	meter metric.Meter
	reg   registry
}

// attrs returns the attribute set of a child.
func (s *spec) attrs(values []string) attribute.Set {
	kvs := make([]attribute.KeyValue, len(values))
	for i, v := range values {
		kvs[i] = attribute.String(s.labels[i], v)
	}
	return attribute.NewSet(kvs...)
}

func (p *otelProvider) check(s spec, err error) error {
	if err == nil && p.meter == nil {
		err = fmt.Errorf("metrics: %s %q: nil MeterProvider", s.kind, s.name)
	}
	return err
}

type otelCounter struct{ *family[*otelCounterChild] }

type otelCounterChild struct {
	inst metric.Float64Counter
	opts []metric.AddOption
}

func (c *otelCounter) With(values ...string) CounterChild { return c.with(values) }

func (c *otelCounterChild) Inc() { c.inst.Add(context.Background(), 1, c.opts...) }

func (c *otelCounterChild) Add(delta float64) {
	checkDelta(delta)
	c.inst.Add(context.Background(), delta, c.opts...)
}

func (p *otelProvider) Counter(name, help string, labels ...string) (Counter, error) {
	s, err := newSpec(counterKind, name, help, nil, labels)
	if err = p.check(s, err); err != nil {
		return nil, err
	}
	return get(&p.reg, s, func() (*otelCounter, error) {
		inst, err := p.meter.Float64Counter(name, metric.WithDescription(help))
		if err != nil {
			return nil, fmt.Errorf("metrics: counter %q: %w", name, err)
		}
		return &otelCounter{newFamily(s, func(values []string) *otelCounterChild {
			return &otelCounterChild{inst, []metric.AddOption{metric.WithAttributeSet(s.attrs(values))}}
		})}, nil
	})
}

type otelGauge struct{ *family[*otelGaugeChild] }

// otelGaugeChild keeps a gauge's value, as float64 bits, for the callback.
type otelGaugeChild struct {
	bits atomic.Uint64
	opts []metric.ObserveOption
}

func (g *otelGauge) With(values ...string) GaugeChild { return g.with(values) }

func (g *otelGaugeChild) Set(v float64)     { g.bits.Store(math.Float64bits(v)) }
func (g *otelGaugeChild) Add(delta float64) { addFloat(&g.bits, delta) }

// addFloat adds delta to the float64 whose bits are in u.
func addFloat(u *atomic.Uint64, delta float64) {
	for {
		old := u.Load()
		if u.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+delta)) {
			return
		}
	}
}

func (p *otelProvider) Gauge(name, help string, labels ...string) (Gauge, error) {
	s, err := newSpec(gaugeKind, name, help, nil, labels)
	if err = p.check(s, err); err != nil {
		return nil, err
	}
	return get(&p.reg, s, func() (*otelGauge, error) {
		g := &otelGauge{newFamily(s, func(values []string) *otelGaugeChild {
			return &otelGaugeChild{opts: []metric.ObserveOption{metric.WithAttributeSet(s.attrs(values))}}
		})}
		_, err := p.meter.Float64ObservableGauge(name, metric.WithDescription(help),
			metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
				g.each(func(_ []string, c *otelGaugeChild) { o.Observe(math.Float64frombits(c.bits.Load()), c.opts...) })
				return nil
			}))
		if err != nil {
			return nil, fmt.Errorf("metrics: gauge %q: %w", name, err)
		}
		return g, nil
	})
}

type otelHistogram struct{ *family[*otelHistogramChild] }

type otelHistogramChild struct {
	inst metric.Float64Histogram
	opts []metric.RecordOption
}

func (h *otelHistogram) With(values ...string) HistogramChild { return h.with(values) }

func (h *otelHistogramChild) Observe(v float64) { h.inst.Record(context.Background(), v, h.opts...) }

func (p *otelProvider) Histogram(name, help string, buckets []float64, labels ...string) (Histogram, error) {
	s, err := newSpec(histogramKind, name, help, buckets, labels)
	if err = p.check(s, err); err != nil {
		return nil, err
	}
	return get(&p.reg, s, func() (*otelHistogram, error) {
		inst, err := p.meter.Float64Histogram(name, metric.WithDescription(help),
			metric.WithExplicitBucketBoundaries(s.buckets...))
		if err != nil {
			return nil, fmt.Errorf("metrics: histogram %q: %w", name, err)
		}
		return &otelHistogram{newFamily(s, func(values []string) *otelHistogramChild {
			return &otelHistogramChild{inst, []metric.RecordOption{metric.WithAttributeSet(s.attrs(values))}}
		})}, nil
	})
}
