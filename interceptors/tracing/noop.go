package tracing

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// noopMeterProvider keeps otelgrpc from recording metrics on otel's global
// meter provider unless the user asks for them: Prometheus is grpckit's
// metrics path.
func noopMeterProvider() metric.MeterProvider { return noop.NewMeterProvider() }
