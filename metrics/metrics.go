package metrics

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
)

// Provider creates metrics on one backend. Each method validates its
// arguments and returns an error (prefixed "metrics: ") for an invalid
// name, label name or bucket list, and for a name the provider already
// holds as another kind of metric, or with another help text, other label
// names or other buckets. Asking again for the same metric returns it.
//
// Names are those valid on every backend: a letter followed by letters,
// digits and underscores ("orders_total"), at most 255 bytes. Label names
// are letters, digits and underscores, not starting with a digit nor with
// "__", without duplicates; a histogram's labels may not include "le".
type Provider interface {
	// Counter returns a counter: a sum that only goes up.
	Counter(name, help string, labels ...string) (Counter, error)
	// Gauge returns a gauge: a value that is set, or goes up and down.
	Gauge(name, help string, labels ...string) (Gauge, error)
	// Histogram returns a histogram: a distribution of observed values
	// counted in buckets with the given upper bounds, finite and strictly
	// increasing. nil (or empty) buckets mean the default: 0.005, 0.01,
	// 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 and 10 (seconds, the
	// Prometheus default). StatsD ignores buckets: its server aggregates.
	Histogram(name, help string, buckets []float64, labels ...string) (Histogram, error)
}

// Counter is a family of counters, one per combination of label values.
type Counter interface {
	// With returns the counter of the label values, given in the order of
	// the label names the counter was created with. It panics when their
	// number differs, as a programming error. With looks the values up:
	// keep the child where the hot path needs it, its methods do not
	// allocate.
	With(labelValues ...string) CounterChild
}

// CounterChild is a counter bound to its label values. A
// prometheus.Counter is one.
type CounterChild interface {
	// Inc adds 1.
	Inc()
	// Add adds delta; it panics when delta is negative, as Prometheus does.
	Add(delta float64)
}

// Gauge is a family of gauges, one per combination of label values.
type Gauge interface {
	// With returns the gauge of the label values; see [Counter.With].
	With(labelValues ...string) GaugeChild
}

// GaugeChild is a gauge bound to its label values. A prometheus.Gauge is
// one.
type GaugeChild interface {
	// Set sets the value.
	Set(value float64)
	// Add adds delta, which may be negative.
	Add(delta float64)
}

// Histogram is a family of histograms, one per combination of label
// values.
type Histogram interface {
	// With returns the histogram of the label values; see [Counter.With].
	With(labelValues ...string) HistogramChild
}

// HistogramChild is a histogram bound to its label values. A
// prometheus.Observer is one.
type HistogramChild interface {
	// Observe adds one observation of value.
	Observe(value float64)
}

// kind is a kind of metric.
type kind int

const (
	counterKind kind = iota
	gaugeKind
	histogramKind
)

func (k kind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

// defaultBuckets are the buckets of a histogram created with nil buckets.
func defaultBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// spec is what a metric is created with, validated.
type spec struct {
	kind    kind
	name    string
	help    string
	labels  []string
	buckets []float64 // histograms only
}

// newSpec validates a metric's name, labels and buckets; it copies labels
// and buckets, and fills in the default buckets of a histogram.
func newSpec(k kind, name, help string, buckets []float64, labels []string) (spec, error) {
	s := spec{kind: k, name: name, help: help, labels: slices.Clone(labels)}
	if !validName(name) {
		return s, fmt.Errorf("metrics: %s name %q: want a letter then letters, digits or underscores, at most 255 bytes", k, name)
	}
	for i, l := range labels {
		switch {
		case !validLabel(l):
			return s, fmt.Errorf("metrics: %s %q: label name %q: want letters, digits or underscores, not starting with a digit or \"__\"", k, name, l)
		case slices.Contains(labels[:i], l):
			return s, fmt.Errorf("metrics: %s %q: duplicate label name %q", k, name, l)
		case k == histogramKind && l == "le":
			return s, fmt.Errorf("metrics: histogram %q: label name \"le\" is reserved", name)
		}
	}
	if k == histogramKind {
		if len(buckets) == 0 {
			s.buckets = defaultBuckets()
		} else {
			s.buckets = slices.Clone(buckets)
		}
		for i, b := range s.buckets {
			if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && b <= s.buckets[i-1]) {
				return s, fmt.Errorf("metrics: histogram %q: buckets %v: want finite, strictly increasing upper bounds", name, buckets)
			}
		}
	}
	return s, nil
}

// same reports whether a metric created with o is the one of s.
func (s spec) same(o spec) bool {
	return s.kind == o.kind && s.name == o.name && s.help == o.help && slices.Equal(s.labels, o.labels) &&
		slices.Equal(s.buckets, o.buckets)
}

// conflict is the error of a name already held by another metric.
func (s spec) conflict(held spec) error {
	return fmt.Errorf("metrics: %s %q with labels %q: the name is already held by a %s with labels %q (or another help text or buckets)",
		s.kind, s.name, s.labels, held.kind, held.labels)
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 255 || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 255 || isDigit(s[0]) || (len(s) > 1 && s[0] == '_' && s[1] == '_') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// checkValues panics when a metric is given the wrong number of label
// values.
func (s *spec) checkValues(values []string) {
	if len(values) != len(s.labels) {
		panic(fmt.Sprintf("metrics: %s %q: %d label values for labels %q", s.kind, s.name, len(values), s.labels))
	}
}

// family holds the children of a metric of the backends that keep their
// own, one per combination of label values, made on first use.
type family[C any] struct {
	spec
	newChild func(values []string) C

	mu       sync.RWMutex
	children map[string]*entry[C]
	order    []*entry[C] // in creation order
}

type entry[C any] struct {
	values []string
	child  C
}

func newFamily[C any](s spec, newChild func(values []string) C) *family[C] {
	return &family[C]{spec: s, newChild: newChild, children: map[string]*entry[C]{}}
}

// with returns the child of values, making it on first use.
func (f *family[C]) with(values []string) C {
	f.checkValues(values)
	var buf [128]byte
	key := appendKey(buf[:0], values)
	f.mu.RLock()
	e, ok := f.children[string(key)]
	f.mu.RUnlock()
	if ok {
		return e.child
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.children[string(key)]; ok {
		return e.child
	}
	vs := slices.Clone(values)
	e = &entry[C]{values: vs, child: f.newChild(vs)}
	f.children[string(key)] = e
	f.order = append(f.order, e)
	return e.child
}

// each calls fn with every child, in creation order.
func (f *family[C]) each(fn func(values []string, c C)) {
	f.mu.RLock()
	es := slices.Clone(f.order)
	f.mu.RUnlock()
	for _, e := range es {
		fn(e.values, e.child)
	}
}

// appendKey appends a key unique to values: each one preceded by its
// length.
func appendKey(b []byte, values []string) []byte {
	for _, v := range values {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return b
}

// checkDelta panics on a negative counter increment, as Prometheus does.
func checkDelta(delta float64) {
	if delta < 0 {
		panic("metrics: counter cannot decrease in value")
	}
}

// registry is the metrics a provider holds, by name.
type registry struct {
	mu sync.Mutex
	m  map[string]any // *family[C] of the backend
}

// get returns the family held under s.name, or makes it with mk; it fails
// when the name is held by a metric of another spec.
func get[F interface{ specOf() spec }](r *registry, s spec, mk func() (F, error)) (F, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var zero F
	if held, ok := r.m[s.name]; ok {
		h := held.(interface{ specOf() spec }).specOf()
		if f, ok := held.(F); ok && h.same(s) {
			return f, nil
		}
		return zero, s.conflict(h)
	}
	f, err := mk()
	if err != nil {
		return zero, err
	}
	if r.m == nil {
		r.m = map[string]any{}
	}
	r.m[s.name] = f
	return f, nil
}

func (s spec) specOf() spec { return s }
