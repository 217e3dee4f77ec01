// Package shared holds the configuration that the client and server
// builders share, and the sealed option machinery that lets one option
// (package grpckit's) configure both. Each shared concern is written once
// here and behaves the same on both sides.
package shared

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/interceptors/metrics"
)

// Registry is where metrics are registered and gathered from.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Common is the configuration both builders share.
type Common struct {
	Logger      *slog.Logger
	AccessLog   bool
	LogOpts     []logging.Option
	Registry    Registry // nil: metrics off
	MetricsOpts []metrics.Option
	TP          trace.TracerProvider
	MP          metric.MeterProvider
	Props       propagation.TextMapPropagator
	Sampling    *float64 // nil: the provider's sampler decides
	Creds       credentials.TransportCredentials
	MaxRecv     int // 0: the builder's default
	MaxSend     int // 0: grpc-go's default
	Errs        []error
}

// Defaults returns the shared defaults: slog.Default(), the access log on,
// a metrics registry of the builder's own with the Go runtime and process
// collectors on it, so that /metrics shows goroutines, memory, GC, CPU and
// file descriptors beside the gRPC series.
func Defaults() Common {
	return Common{Logger: slog.Default(), AccessLog: true, Registry: NewRegistry()}
}

// NewRegistry returns a registry with the Go runtime and process
// collectors registered.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Errorf records a configuration error, returned by the builder's New.
func (c *Common) Errorf(format string, args ...any) {
	c.Errs = append(c.Errs, fmt.Errorf(format, args...))
}

// Err joins the recorded errors.
func (c *Common) Err() error { return errors.Join(c.Errs...) }

// Target is a builder's configuration: it holds a Common.
type Target interface {
	Shared() *Common
}
