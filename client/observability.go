package client

import "github.com/prometheus/client_golang/prometheus"

// obsConfig holds the logging, metrics and tracing options.
type obsConfig struct {
	registry *prometheus.Registry
}

// metricsRegisterer returns where the client's metrics go, or nil when
// metrics are off.
func (c *config) metricsRegisterer() prometheus.Registerer {
	if c.obs.registry == nil {
		return nil
	}
	return c.obs.registry
}

// installObservability installs logging, metrics and tracing.
func installObservability(cfg *config, b *builtins) error { return nil }
