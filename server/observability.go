package server

import "github.com/prometheus/client_golang/prometheus"

// obsConfig holds the logging, metrics and tracing options.
type obsConfig struct {
	registry *prometheus.Registry
}

// metricsRegisterer returns where the server's metrics go, or nil when
// metrics are off.
func (s *Server) metricsRegisterer() prometheus.Registerer {
	if s.cfg.obs.registry == nil {
		return nil
	}
	return s.cfg.obs.registry
}

// installObservability installs logging, metrics and tracing.
func (s *Server) installObservability(b *builtins) {}
