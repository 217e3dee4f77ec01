package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// The W3C fast paths must write and read exactly what Propagators() does.
func TestW3CFastPathMatchesPropagators(t *testing.T) {
	ts, err := trace.ParseTraceState("vendor=abc,other=x")
	if err != nil {
		t.Fatal(err)
	}
	member, _ := baggage.NewMember("user", "42")
	member2, _ := baggage.NewMember("tenant", "a b")
	bag, _ := baggage.New(member, member2)
	for _, tc := range []struct {
		name  string
		flags trace.TraceFlags
		ts    trace.TraceState
		bag   bool
	}{
		{"unsampled", 0, trace.TraceState{}, false},
		{"sampled", trace.FlagsSampled, trace.TraceState{}, false},
		{"random flag", trace.FlagsSampled | trace.FlagsRandom, trace.TraceState{}, false},
		{"tracestate and baggage", trace.FlagsSampled, ts, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
				SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
				TraceFlags: tc.flags,
				TraceState: tc.ts,
			})
			ctx := trace.ContextWithSpanContext(context.Background(), sc)
			if tc.bag {
				ctx = baggage.ContextWithBaggage(ctx, bag)
			}
			want := propagation.MapCarrier{}
			Propagators().Inject(ctx, want)

			got, _ := metadata.FromOutgoingContext(injectW3C(ctx, sc))
			if len(got) != len(want) {
				t.Fatalf("fast path wrote %v, propagators %v", got, want)
			}
			for k, v := range want {
				if g := got.Get(k); len(g) != 1 || g[0] != v {
					t.Errorf("%s: fast path %q, propagators %q", k, g, v)
				}
			}

			in := metadata.NewIncomingContext(context.Background(), got)
			ectx := extractW3C(in)
			octx := Propagators().Extract(context.Background(), propagation.MapCarrier(want))
			if g, w := trace.SpanContextFromContext(ectx), trace.SpanContextFromContext(octx); !g.Equal(w) || !g.IsRemote() {
				t.Errorf("extracted %+v, propagators %+v", g, w)
			}
			if g, w := baggage.FromContext(ectx).String(), baggage.FromContext(octx).String(); g != w {
				t.Errorf("baggage %q, propagators %q", g, w)
			}
		})
	}
}

// Several baggage headers are all read; a malformed traceparent is ignored
// as otel ignores it.
func TestW3CExtractEdgeCases(t *testing.T) {
	md := metadata.Pairs("baggage", "a=1", "baggage", "b=2", "traceparent", "00-zz-00f067aa0ba902b7-01")
	ctx := extractW3C(metadata.NewIncomingContext(context.Background(), md))
	b := baggage.FromContext(ctx)
	if b.Member("a").Value() != "1" || b.Member("b").Value() != "2" {
		t.Errorf("baggage = %q, want both headers", b.String())
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("malformed traceparent gave a valid span context")
	}
}

func FuzzExtractW3C(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v", "a=1")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", "")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "bad state", "%%%")
	f.Fuzz(func(t *testing.T, tp, ts, bag string) {
		md := metadata.Pairs("traceparent", tp, "tracestate", ts, "baggage", bag)
		ctx := extractW3C(metadata.NewIncomingContext(context.Background(), md))
		octx := Propagators().Extract(context.Background(), propagation.MapCarrier{"traceparent": tp, "tracestate": ts, "baggage": bag})
		if g, w := trace.SpanContextFromContext(ctx), trace.SpanContextFromContext(octx); !g.Equal(w) {
			t.Errorf("extracted %+v, propagators %+v", g, w)
		}
		if g, w := baggage.FromContext(ctx).String(), baggage.FromContext(octx).String(); g != w {
			t.Errorf("baggage %q, propagators %q", g, w)
		}
	})
}
