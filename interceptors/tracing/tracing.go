// Package tracing traces gRPC calls with OpenTelemetry through otelgrpc's
// stats handlers (not its deprecated interceptors), and propagates W3C trace
// context and baggage across every hop.
//
// A stats handler sees each call from the transport's side: on the server
// the span starts before any interceptor runs, so every rejection is inside
// it; on the client each attempt gets its own span. Since tracing is a stats
// handler rather than an interceptor, this package exports [ServerHandler]
// and [ClientHandler] instead of the four interceptor constructors.
//
// Sampling belongs to the TracerProvider; [Sampler] builds the usual
// production choice (parent-based, a ratio of new traces).
package tracing

import (
	"reflect"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// Option configures the stats handlers.
type Option func(*config)

type config struct {
	tp    trace.TracerProvider
	mp    metric.MeterProvider
	props propagation.TextMapPropagator
}

// WithTracerProvider sets the provider spans come from. Default: otel's
// global provider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider records otelgrpc's OpenTelemetry metrics
// (rpc.server.duration and friends) on mp. Default: none are recorded.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithPropagators sets how trace context crosses the wire. Default: W3C
// trace context and baggage ([Propagators]).
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.props = p }
}

// Propagators returns W3C trace context and baggage propagation.
func Propagators() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Sampler samples ratio (0 to 1) of new traces, and follows the caller's
// decision for traces that arrive with a parent, so a trace is kept or
// dropped as a whole across services.
func Sampler(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
}

// GlobalProviderSet reports whether otel.SetTracerProvider has been called,
// that is, whether otel's global provider is more than the default no-op.
func GlobalProviderSet() bool {
	t := reflect.TypeOf(otel.GetTracerProvider())
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t == nil || t.PkgPath() != "go.opentelemetry.io/otel/internal/global"
}

func (c *config) otelOptions() []otelgrpc.Option {
	props := c.props
	if props == nil {
		props = Propagators()
	}
	tp := c.tp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	mp := c.mp
	if mp == nil {
		mp = noopMeterProvider()
	}
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithMeterProvider(mp),
		otelgrpc.WithPropagators(props),
	}
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// ServerHandler returns the server's stats handler: it extracts the
// caller's trace context and starts a server span per call.
func ServerHandler(opts ...Option) stats.Handler {
	return otelgrpc.NewServerHandler(newConfig(opts).otelOptions()...)
}

// ClientHandler returns the client's stats handler: it starts a client span
// per attempt and injects the trace context into the outgoing metadata.
func ClientHandler(opts ...Option) stats.Handler {
	return otelgrpc.NewClientHandler(newConfig(opts).otelOptions()...)
}
