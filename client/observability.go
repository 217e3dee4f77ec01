package client

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	lbmetrics "github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/interceptors/metrics"
	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/promreg"
)

// Registry returns the registry the connection's metrics are recorded on
// (see grpckit.WithMetrics), nil when metrics are off.
func (c *Conn) Registry() grpckit.Registry { return c.registry }

// metricsRegisterer returns where the client's metrics go, or nil when
// metrics are off.
func (c *config) metricsRegisterer() prometheus.Registerer {
	if c.common.Registry == nil {
		return nil
	}
	return c.common.Registry
}

// installObservability installs tracing, metrics (a stats handler for
// OpenTelemetry metrics) and the
// access log. Whatever is off installs nothing.
func installObservability(cfg *config, b *builtins) error {
	o := &cfg.common
	if o.TP != nil || tracing.GlobalProviderSet() {
		topts := []tracing.Option{tracing.WithTracerProvider(o.TP), tracing.WithPropagators(o.Props)}
		if o.Sampling != nil {
			topts = append(topts, tracing.WithSampling(*o.Sampling))
		}
		b.add(SlotTracing, tracing.UnaryClientInterceptor(topts...), tracing.StreamClientInterceptor(topts...))
	}
	if o.MP != nil {
		b.dial = append(b.dial, grpc.WithStatsHandler(tracing.ClientHandler(tracing.WithMeterProvider(o.MP))))
	}
	if o.Registry != nil {
		m, err := metrics.NewClient(o.Registry, o.MetricsOpts...)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		b.add(SlotMetrics, m.UnaryClientInterceptor(), m.StreamClientInterceptor())
		// grpckit's balancers report per-endpoint state through one collector
		// per registry; connections sharing a registry share it.
		if _, err := promreg.Register(o.Registry, lbmetrics.NewCollector()); err != nil {
			return fmt.Errorf("client: balancer metrics: %w", err)
		}
	}
	if o.AccessLog {
		opts := append([]logging.Option{logging.WithLogger(o.Logger)}, o.LogOpts...)
		b.add(SlotLogging, logging.UnaryClientInterceptor(opts...), logging.StreamClientInterceptor(opts...))
	}
	return nil
}
