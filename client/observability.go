package client

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	lbmetrics "github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/interceptors/metrics"
	"github.com/grpckit/grpckit/interceptors/tracing"
)

// Registry is where metrics are registered and gathered from; a
// *prometheus.Registry is one.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// obsConfig holds the logging, metrics and tracing options.
type obsConfig struct {
	logger      *slog.Logger
	accessLog   bool
	logOpts     []logging.Option
	registry    Registry // nil: metrics off
	metricsOpts []metrics.Option
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	props       propagation.TextMapPropagator
	sampling    *float64 // nil: the provider's sampler decides
}

func defaultObs() obsConfig {
	return obsConfig{logger: slog.Default(), accessLog: true, registry: prometheus.NewRegistry()}
}

// WithLogger sets the logger for the access log and the interceptors the
// builder installs. Default: slog.Default() when New runs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errorf("WithLogger: nil logger")
			return
		}
		c.obs.logger = l
	}
}

// WithAccessLog turns the one-line-per-call access log on or off. Default: on.
func WithAccessLog(on bool) Option {
	return func(c *config) { c.obs.accessLog = on }
}

// WithLoggingOptions passes options to the access log (levels per code,
// payloads, health-check logging); see package logging. Default: none.
func WithLoggingOptions(opts ...logging.Option) Option {
	return func(c *config) { c.obs.logOpts = append(c.obs.logOpts, opts...) }
}

// WithMetrics records the standard grpc_client_* Prometheus series on r; nil
// turns metrics off. Connections sharing a registry share the series.
// Default: a new registry of the connection's own (never the global one),
// available from [Conn.Registry].
func WithMetrics(r Registry, opts ...metrics.Option) Option {
	return func(c *config) {
		c.obs.registry = r
		c.obs.metricsOpts = opts
	}
}

// WithTracerProvider traces every call with spans from tp, started at
// [SlotTracing] by package tracing's interceptors (one span per call as the
// caller sees it, retries included), and propagates trace context to the
// server.
// Default: otel's global provider if one has been set with
// otel.SetTracerProvider, otherwise no tracing at all.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.obs.tp = tp }
}

// WithTraceSampling has grpckit decide which root calls are traced, before
// anything is built: ratio (0 to 1) of the calls that arrive without a
// trace start one, the others create no span and send no trace header;
// calls with a parent follow it. Leave the provider's sampler at its
// default (parent-based, always on). This is what keeps an untraced call
// nearly free; see tracing.WithSampling for what it trades (unsampled
// calls propagate no trace id, so their log lines carry none). Default:
// the provider's sampler decides every call and unsampled calls still
// propagate their trace context. Like the provider, it only matters while
// tracing is on (see [WithTracerProvider]).
func WithTraceSampling(ratio float64) Option {
	return func(c *config) {
		if !(ratio >= 0 && ratio <= 1) {
			c.errorf("WithTraceSampling: ratio %v is not between 0 and 1", ratio)
			return
		}
		c.obs.sampling = &ratio
	}
}

// WithMeterProvider records otelgrpc's OpenTelemetry RPC metrics on mp,
// through otelgrpc's stats handler, besides or instead of Prometheus.
// Default: none.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.obs.mp = mp }
}

// WithPropagators sets how trace context and baggage are written to
// outgoing calls. Default: W3C trace context and baggage.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.obs.props = p }
}

// Registry returns the registry the connection's metrics are recorded on,
// nil when metrics are off.
func (c *Conn) Registry() Registry { return c.registry }

// metricsRegisterer returns where the client's metrics go, or nil when
// metrics are off.
func (c *config) metricsRegisterer() prometheus.Registerer {
	if c.obs.registry == nil {
		return nil
	}
	return c.obs.registry
}

// installObservability installs tracing, metrics (a stats handler for
// OpenTelemetry metrics) and the
// access log. Whatever is off installs nothing.
func installObservability(cfg *config, b *builtins) error {
	o := &cfg.obs
	if o.tp != nil || tracing.GlobalProviderSet() {
		topts := []tracing.Option{tracing.WithTracerProvider(o.tp), tracing.WithPropagators(o.props)}
		if o.sampling != nil {
			topts = append(topts, tracing.WithSampling(*o.sampling))
		}
		b.add(SlotTracing, tracing.UnaryClientInterceptor(topts...), tracing.StreamClientInterceptor(topts...))
	}
	if o.mp != nil {
		b.dial = append(b.dial, grpc.WithStatsHandler(tracing.ClientHandler(tracing.WithMeterProvider(o.mp))))
	}
	if o.registry != nil {
		m, err := metrics.NewClient(o.registry, o.metricsOpts...)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		b.add(SlotMetrics, m.UnaryClientInterceptor(), m.StreamClientInterceptor())
		// grpckit's balancers report per-endpoint state through one collector
		// per registry; connections sharing a registry share it.
		if err := o.registry.Register(lbmetrics.NewCollector()); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return fmt.Errorf("client: balancer metrics: %w", err)
			}
		}
	}
	if o.accessLog {
		opts := append([]logging.Option{logging.WithLogger(o.logger)}, o.logOpts...)
		b.add(SlotLogging, logging.UnaryClientInterceptor(opts...), logging.StreamClientInterceptor(opts...))
	}
	return nil
}
