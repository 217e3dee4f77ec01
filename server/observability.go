package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/interceptors/metrics"
	"github.com/grpckit/grpckit/interceptors/tracing"
	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/resolver"
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
// [AdminReadTimeout], [AdminWriteTimeout], [AdminIdleTimeout]).
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

// Timeouts of the admin endpoint's HTTP server ([WithAdmin]).
const (
	// AdminReadTimeout bounds reading a request, headers included.
	AdminReadTimeout = 10 * time.Second
	// AdminWriteTimeout bounds writing a response; it leaves room for a
	// CPU profile or trace of up to a minute.
	AdminWriteTimeout = 90 * time.Second
	// AdminIdleTimeout closes keep-alive connections idle for longer.
	AdminIdleTimeout = 30 * time.Second
)

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

// AdminHandler returns the server's admin handler, to mount on your own
// mux, behind your own authentication:
//
//   - /metrics: the server's registry (OpenMetrics with exemplars on
//     request), when metrics are on;
//   - /healthz: 200 while the server is SERVING, 503 otherwise;
//   - /debug/grpckit/resolvers and /debug/grpckit/balancers: JSON of every
//     live grpckit resolver and balancer of the process (resolver.Snapshot,
//     balancer.Snapshot: endpoints, staleness and errors; connection
//     states, latency, scores and ejections);
//   - /debug/pprof/ with [WithPprof] only.
//
// It works with or without [WithAdmin], which serves the same handler on
// an address of its own.
func (s *Server) AdminHandler() http.Handler { return s.adminHandler }

// newAdminHandler builds the admin handler.
func (s *Server) newAdminHandler() http.Handler {
	mux := http.NewServeMux()
	if r := s.cfg.common.Registry; r != nil {
		mux.Handle("/metrics", metrics.Handler(r))
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "NOT_SERVING", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("SERVING\n"))
	})
	mux.HandleFunc("/debug/grpckit/resolvers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, resolver.Snapshot())
	})
	mux.HandleFunc("/debug/grpckit/balancers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, balancer.Snapshot())
	})
	if s.cfg.obs.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// startAdmin binds and serves the admin endpoint, if configured.
func (s *Server) startAdmin() error {
	addr := s.cfg.obs.adminAddr
	if addr == "" {
		return nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: admin endpoint: %w", err)
	}
	if s.cfg.obs.pprof && !isLoopback(lis.Addr()) {
		s.cfg.common.Logger.LogAttrs(context.Background(), slog.LevelWarn,
			"admin endpoint serves pprof beyond loopback, without authentication",
			slog.String("admin.address", lis.Addr().String()))
	}
	s.admin = &http.Server{
		Handler:           s.adminHandler,
		ReadHeaderTimeout: AdminReadTimeout,
		ReadTimeout:       AdminReadTimeout,
		WriteTimeout:      AdminWriteTimeout,
		IdleTimeout:       AdminIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.common.Logger.Handler(), slog.LevelWarn),
	}
	s.adminLis = lis
	s.adminDone = make(chan struct{})
	go func() {
		defer close(s.adminDone)
		if err := s.admin.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.common.Logger.LogAttrs(context.Background(), slog.LevelError, "admin endpoint stopped",
				slog.String("error", err.Error()))
		}
	}()
	return nil
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// writeJSON writes v as indented JSON.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// AdminAddr returns the admin endpoint's address, nil without [WithAdmin].
func (s *Server) AdminAddr() net.Addr {
	if s.adminLis == nil {
		return nil
	}
	return s.adminLis.Addr()
}

// stopAdmin closes the admin endpoint and waits for its goroutine.
func (s *Server) stopAdmin() {
	if s.admin == nil {
		return
	}
	_ = s.admin.Close()
	<-s.adminDone
}
