package metrics

import (
	"context"
	"testing"
	"time"

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
