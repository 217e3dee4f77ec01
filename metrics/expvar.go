package metrics

import (
	"expvar"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Expvar returns a provider that publishes each metric with Go's expvar
// package, under prefix+name, so that /debug/vars shows them (the admin
// handler serves it). expvar is global to the process: asking any Expvar
// provider again for a metric of the same prefixed name, kind, labels and
// buckets returns the one published, and a name published otherwise (by
// another kind of metric, or by other code) is an error, not expvar's
// panic. Published variables cannot be removed.
//
// A metric's JSON is an object with a member per combination of label
// values, keyed "label=value,label=value" in the order of the labels ("" for
// a metric without labels), in the order they were first used:
//
//	"app_orders_total": {"kind=sum": 2, "kind=concat": 1}
//
// A histogram's member is {"count": n, "sum": s, "buckets": {"0.1": n,
// ..., "+Inf": n}}, with cumulative bucket counts as Prometheus has them.
// A value that is not finite is written as a string ("NaN", "+Inf").
//
// Help texts are not published. The Go runtime's memory statistics are
// published by expvar itself
// ("memstats"), as is the command line ("cmdline", which the admin handler
// leaves out: it may hold secrets).
func Expvar(prefix string) Provider { return expvarProvider{prefix} }

type expvarProvider struct{ prefix string }

// expvarMu makes looking a name up and publishing it one step.
var expvarMu sync.Mutex

// expvarGet returns the variable published under s.name with s's spec, or
// publishes the one mk returns.
func expvarGet[F interface {
	expvar.Var
	specOf() spec
}](s spec, mk func() F) (F, error) {
	expvarMu.Lock()
	defer expvarMu.Unlock()
	if v := expvar.Get(s.name); v != nil {
		var zero F
		held, ok := v.(interface{ specOf() spec })
		if !ok {
			return zero, fmt.Errorf("metrics: %s %q: the name is already published in expvar", s.kind, s.name)
		}
		if f, ok := v.(F); ok && held.specOf().same(s) {
			return f, nil
		}
		return zero, s.conflict(held.specOf())
	}
	f := mk()
	expvar.Publish(s.name, f)
	return f, nil
}

type expvarCounter struct{ *family[*expvarFloat] }

// expvarFloat is a counter's or a gauge's value, as float64 bits.
type expvarFloat struct{ bits atomic.Uint64 }

func (f *expvarFloat) Inc() { addFloat(&f.bits, 1) }
func (f *expvarFloat) Add(delta float64) {
	checkDelta(delta)
	addFloat(&f.bits, delta)
}

func (c *expvarCounter) With(values ...string) CounterChild { return c.with(values) }
func (c *expvarCounter) String() string {
	return familyJSON(c.family, func(b []byte, f *expvarFloat) []byte {
		return appendFloat(b, math.Float64frombits(f.bits.Load()))
	})
}

type expvarGauge struct{ *family[*expvarGaugeChild] }

type expvarGaugeChild struct{ bits atomic.Uint64 }

func (g *expvarGaugeChild) Set(v float64)     { g.bits.Store(math.Float64bits(v)) }
func (g *expvarGaugeChild) Add(delta float64) { addFloat(&g.bits, delta) }

func (g *expvarGauge) With(values ...string) GaugeChild { return g.with(values) }
func (g *expvarGauge) String() string {
	return familyJSON(g.family, func(b []byte, c *expvarGaugeChild) []byte {
		return appendFloat(b, math.Float64frombits(c.bits.Load()))
	})
}

type expvarHistogram struct{ *family[*expvarHistogramChild] }

type expvarHistogramChild struct {
	upper  []float64
	counts []atomic.Uint64 // per bucket, the last one +Inf
	sum    atomic.Uint64   // float64 bits
}

func (h *expvarHistogramChild) Observe(v float64) {
	i := 0
	for i < len(h.upper) && v > h.upper[i] {
		i++
	}
	h.counts[i].Add(1)
	addFloat(&h.sum, v)
}

func (h *expvarHistogram) With(values ...string) HistogramChild { return h.with(values) }
func (h *expvarHistogram) String() string {
	return familyJSON(h.family, func(b []byte, c *expvarHistogramChild) []byte {
		// Read one at a time: racing Observe, count and sum may
		// disagree by an observation.
		var cum uint64
		buckets := make([]byte, 0, 16*len(c.counts))
		for i := range c.counts {
			cum += c.counts[i].Load()
			if i > 0 {
				buckets = append(buckets, ',')
			}
			if i < len(c.upper) {
				buckets = strconv.AppendQuote(buckets, strconv.FormatFloat(c.upper[i], 'g', -1, 64))
			} else {
				buckets = append(buckets, `"+Inf"`...)
			}
			buckets = append(buckets, ':')
			buckets = strconv.AppendUint(buckets, cum, 10)
		}
		b = append(b, `{"count":`...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, `,"sum":`...)
		b = appendFloat(b, math.Float64frombits(c.sum.Load()))
		b = append(b, `,"buckets":{`...)
		b = append(b, buckets...)
		return append(b, "}}"...)
	})
}

// familyJSON writes a family as a JSON object, a member per child.
func familyJSON[C any](f *family[C], value func([]byte, C) []byte) string {
	b := []byte{'{'}
	first := true
	f.each(func(values []string, c C) {
		if !first {
			b = append(b, ',')
		}
		first = false
		var key strings.Builder
		for i, v := range values {
			if i > 0 {
				key.WriteByte(',')
			}
			key.WriteString(f.labels[i])
			key.WriteByte('=')
			key.WriteString(v)
		}
		b = strconv.AppendQuote(b, key.String())
		b = append(b, ':')
		b = value(b, c)
	})
	return string(append(b, '}'))
}

// appendFloat writes v as JSON: a number, or a string when not finite.
func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.AppendQuote(b, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func (p expvarProvider) Counter(name, help string, labels ...string) (Counter, error) {
	s, err := p.spec(counterKind, name, help, nil, labels)
	if err != nil {
		return nil, err
	}
	return expvarGet(s, func() *expvarCounter {
		return &expvarCounter{newFamily(s, func([]string) *expvarFloat { return &expvarFloat{} })}
	})
}

func (p expvarProvider) Gauge(name, help string, labels ...string) (Gauge, error) {
	s, err := p.spec(gaugeKind, name, help, nil, labels)
	if err != nil {
		return nil, err
	}
	return expvarGet(s, func() *expvarGauge {
		return &expvarGauge{newFamily(s, func([]string) *expvarGaugeChild { return &expvarGaugeChild{} })}
	})
}

func (p expvarProvider) Histogram(name, help string, buckets []float64, labels ...string) (Histogram, error) {
	s, err := p.spec(histogramKind, name, help, buckets, labels)
	if err != nil {
		return nil, err
	}
	return expvarGet(s, func() *expvarHistogram {
		return &expvarHistogram{newFamily(s, func([]string) *expvarHistogramChild {
			return &expvarHistogramChild{upper: s.buckets, counts: make([]atomic.Uint64, len(s.buckets)+1)}
		})}
	})
}

// spec validates name and returns the spec of prefix+name.
func (p expvarProvider) spec(k kind, name, help string, buckets []float64, labels []string) (spec, error) {
	s, err := newSpec(k, name, help, buckets, labels)
	s.name = p.prefix + name
	return s, err
}
