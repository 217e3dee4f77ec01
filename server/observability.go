package server

import (
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/interceptors/metrics"
	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/chain"
)

// obsConfig holds the admin options.
type obsConfig struct {
	adminAddr string
	pprof     bool
}

// WithAdmin serves the admin handler ([Server.AdminHandler]) on addr,
// apart from the gRPC port. New binds the address; [Server.AdminAddr]
// reports it. The endpoint has no authentication: bind it to loopback
// ("127.0.0.1:9090"), or to an address only your scraper reaches; ":9090"
// or ":0" listen on every interface. To put it behind your own
// authentication, or on your own mux, mount [Server.AdminHandler]
// instead. The HTTP server times out slow and idle clients (see
// admin.ReadTimeout, admin.WriteTimeout, admin.IdleTimeout).
// Default: no admin endpoint.
func WithAdmin(addr string) Option {
	return option(func(c *config) { c.obs.adminAddr = addr })
}

// WithPprof adds Go's profiler (net/http/pprof) to the admin handler under
// /debug/pprof/: index, profiles, symbol, CPU profile and execution trace.
// The command line (/debug/pprof/cmdline) is never served: it often
// carries secrets. Profiles reveal code and data: serve them only to
// operators. Default: off.
func WithPprof(on bool) Option {
	return option(func(c *config) { c.obs.pprof = on })
}

// Registry returns the registry the server's metrics are recorded on (see
// grpckit.WithMetrics), nil when metrics are off. Register your own
// collectors on it to have them on the admin endpoint too.
func (s *Server) Registry() grpckit.Registry { return s.cfg.common.Registry }

// metricsRegisterer returns where the server's metrics go, or nil when
// metrics are off.
func (s *Server) metricsRegisterer() prometheus.Registerer {
	if s.cfg.common.Registry == nil {
		return nil
	}
	return s.cfg.common.Registry
}

// installObservability installs tracing, metrics (a stats handler for
// OpenTelemetry metrics) and the
// access log. Whatever is off installs nothing.
func (s *Server) installObservability(b *builtins) error {
	o := &s.cfg.common
	if o.TP != nil || tracing.GlobalProviderSet() {
		topts := []tracing.Option{tracing.WithTracerProvider(o.TP), tracing.WithPropagators(o.Props)}
		if o.Sampling != nil {
			topts = append(topts, tracing.WithSampling(*o.Sampling))
		}
		b.add(SlotTracing, chain.StageOf(tracing.UnaryServerInterceptor(topts...)), tracing.StreamServerInterceptor(topts...))
	}
	if o.MP != nil {
		b.opts = append(b.opts, grpc.StatsHandler(tracing.ServerHandler(tracing.WithMeterProvider(o.MP))))
	}
	if o.Registry != nil {
		m, err := metrics.NewServer(o.Registry, o.MetricsOpts...)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.metrics = m
		b.add(SlotMetrics, chain.StageOf(m.UnaryServerInterceptor()), m.StreamServerInterceptor())
	}
	if o.AccessLog {
		opts := append([]logging.Option{logging.WithLogger(s.cfg.common.Logger)}, o.LogOpts...)
		b.add(SlotLogging, chain.StageOf(logging.UnaryServerInterceptor(opts...)), logging.StreamServerInterceptor(opts...))
	}
	return nil
}

// AdminHandler returns the admin handler (package admin), to mount on
// your own mux, behind your own authentication: the process's admin page
// and its JSON twin, /metrics, /healthz, the resolver and balancer state,
// and /debug/pprof/ with [WithPprof] only. It shows every grpckit server
// and client of the process, this one included. It works with or without
// [WithAdmin], which serves the same handler on an address of its own.
func (s *Server) AdminHandler() http.Handler { return s.adminHandler }

// startAdmin builds the admin handler, and binds and serves the admin
// endpoint if configured.
func (s *Server) startAdmin() error {
	opts := []admin.Option{admin.WithLogger(s.cfg.common.Logger)}
	if s.cfg.obs.pprof {
		opts = append(opts, admin.WithPprof())
	}
	h, err := admin.New(opts...)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.adminHandler = h
	if s.cfg.obs.adminAddr == "" {
		return nil
	}
	if s.admin, err = h.Listen(s.cfg.obs.adminAddr); err != nil {
		return fmt.Errorf("server: admin endpoint: %w", err)
	}
	return nil
}

// AdminAddr returns the admin endpoint's address, nil without [WithAdmin].
func (s *Server) AdminAddr() net.Addr {
	if s.admin == nil {
		return nil
	}
	return s.admin.Addr()
}

// stopAdmin closes the admin endpoint and waits for its goroutine.
func (s *Server) stopAdmin() {
	if s.admin != nil {
		_ = s.admin.Close()
	}
	if s.grpcAdminCleanup != nil {
		s.grpcAdminOnce.Do(s.grpcAdminCleanup)
	}
}
