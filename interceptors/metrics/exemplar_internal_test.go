package metrics

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// A method's series take an exemplar from a sampled call at most once per
// exemplarEvery, never from an unsampled one.
func TestExemplarEvery(t *testing.T) {
	span := func(flags trace.TraceFlags, id byte) context.Context {
		return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{id}, SpanID: trace.SpanID{1}, TraceFlags: flags,
		}))
	}
	var s series
	t0 := time.Unix(1000, 0)
	if ex := s.exemplar(span(0, 1), t0); ex != nil {
		t.Errorf("unsampled call: exemplar %v", ex)
	}
	if ex := s.exemplar(span(trace.FlagsSampled, 2), t0); ex["trace_id"] != (trace.TraceID{2}).String() {
		t.Errorf("first sampled call: exemplar %v, want its trace id", ex)
	}
	if ex := s.exemplar(span(trace.FlagsSampled, 3), t0.Add(time.Second-1)); ex != nil {
		t.Errorf("sampled call within a second: exemplar %v, want none", ex)
	}
	if ex := s.exemplar(span(trace.FlagsSampled, 4), t0.Add(time.Second)); ex["trace_id"] != (trace.TraceID{4}).String() {
		t.Errorf("sampled call a second later: exemplar %v, want its trace id", ex)
	}
}

// Each bucket of the handling-time histogram takes an exemplar from a
// sampled call landing in it at most once per exemplarEvery, besides the
// calls that set the method's exemplars: a slow call gets its trace onto
// the slow bucket even within the second another call set the method's.
func TestBucketExemplar(t *testing.T) {
	sc := func(flags trace.TraceFlags, id byte) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{id}, SpanID: trace.SpanID{1}, TraceFlags: flags})
	}
	c := &collector{bounds: []float64{0.01, 0.1}}
	s := &series{c: c, exBucket: make([]atomic.Int64, len(c.bounds)+1)}
	t0 := time.Unix(1000, 0)
	method := prometheus.Labels{"trace_id": (trace.TraceID{1}).String()}
	for _, tc := range []struct {
		name string
		d    float64
		at   time.Duration
		ex   prometheus.Labels
		sc   trace.SpanContext
		want string // trace id of the exemplar; "": none
	}{
		{"unsampled", 0.005, 0, nil, sc(0, 9), ""},
		{"the method's exemplar, fast bucket", 0.005, 0, method, sc(trace.FlagsSampled, 1), (trace.TraceID{1}).String()},
		{"fast bucket again within the second", 0.002, 10 * time.Millisecond, nil, sc(trace.FlagsSampled, 2), ""},
		{"slow bucket within the second", 0.05, 20 * time.Millisecond, nil, sc(trace.FlagsSampled, 3), (trace.TraceID{3}).String()},
		{"slowest (+Inf) bucket", 5, 30 * time.Millisecond, nil, sc(trace.FlagsSampled, 4), (trace.TraceID{4}).String()},
		{"slow bucket again within the second", 0.1, 40 * time.Millisecond, nil, sc(trace.FlagsSampled, 5), ""},
		{"fast bucket a second later", 0.005, time.Second, nil, sc(trace.FlagsSampled, 6), (trace.TraceID{6}).String()},
	} {
		got := s.bucketExemplar(tc.d, t0.Add(tc.at), tc.ex, tc.sc)
		if got["trace_id"] != tc.want || (tc.want == "") != (got == nil) {
			t.Errorf("%s: exemplar %v, want trace id %q", tc.name, got, tc.want)
		}
	}
}
