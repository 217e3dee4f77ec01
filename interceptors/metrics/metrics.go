// Package metrics records Prometheus metrics for gRPC calls, with the series
// every gRPC dashboard expects: grpc_server_started_total,
// grpc_server_handled_total, grpc_server_handling_seconds (a histogram),
// grpc_server_msg_received_total, grpc_server_msg_sent_total and their
// grpc_client_* twins. They come from go-grpc-middleware's
// providers/prometheus; this package adds safe defaults (a histogram on, an
// explicit registry, never the global one), exemplars carrying the trace id
// of sampled calls, and [Handler] for serving them.
//
// Metrics keep state, so unlike stateless interceptor packages the four
// standard constructors are methods of [Server] and [Client].
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

// DefaultBuckets are the handling-time histogram buckets, in seconds: from
// 0.5 ms to 10 s, fine enough for loopback and cross-region calls alike.
var DefaultBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Option configures [NewServer] and [NewClient].
type Option func(*config)

type config struct {
	buckets []float64
	labels  prometheus.Labels
}

// WithBuckets sets the handling-time histogram buckets, in seconds.
// Default: [DefaultBuckets].
func WithBuckets(b []float64) Option {
	return func(c *config) { c.buckets = b }
}

// WithConstLabels adds constant labels to every series (for example the
// service's name when several share a registry). Default: none.
func WithConstLabels(l prometheus.Labels) Option {
	return func(c *config) { c.labels = l }
}

func newConfig(opts []Option) config {
	c := config{buckets: DefaultBuckets}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// exemplar returns the trace id of a sampled call as an exemplar, nil
// otherwise (nothing is built for unsampled calls).
func exemplar(ctx context.Context) prometheus.Labels {
	if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
		return prometheus.Labels{"trace_id": sc.TraceID().String()}
	}
	return nil
}

// ErrNilRegisterer is returned when no registerer is given.
var ErrNilRegisterer = errors.New("metrics: nil prometheus.Registerer")

// Server holds the server-side collectors.
type Server struct {
	m *grpcprom.ServerMetrics
}

// NewServer creates the server collectors and registers them on reg. If reg
// already holds them (another server shares the registry), they are shared.
func NewServer(reg prometheus.Registerer, opts ...Option) (*Server, error) {
	if reg == nil {
		return nil, ErrNilRegisterer
	}
	c := newConfig(opts)
	m := grpcprom.NewServerMetrics(
		grpcprom.WithServerCounterOptions(grpcprom.WithConstLabels(c.labels)),
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(c.buckets), grpcprom.WithHistogramConstLabels(c.labels)),
	)
	if err := reg.Register(m); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*grpcprom.ServerMetrics); ok {
				// Servers sharing a registry share the series.
				return &Server{m: existing}, nil
			}
		}
		return nil, fmt.Errorf("metrics: register server metrics: %w", err)
	}
	return &Server{m: m}, nil
}

// InitializeMetrics creates the series of every method of srv at zero, so
// that rates and alerts work before the first call.
func (s *Server) InitializeMetrics(srv reflection.ServiceInfoProvider) { s.m.InitializeMetrics(srv) }

// UnaryServerInterceptor records unary calls.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return s.m.UnaryServerInterceptor(grpcprom.WithExemplarFromContext(exemplar))
}

// StreamServerInterceptor records streams and their messages.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return s.m.StreamServerInterceptor(grpcprom.WithExemplarFromContext(exemplar))
}

// Client holds the client-side collectors.
type Client struct {
	m *grpcprom.ClientMetrics
}

// NewClient creates the client collectors and registers them on reg. If reg
// already holds them (another connection shares the registry), they are
// shared.
func NewClient(reg prometheus.Registerer, opts ...Option) (*Client, error) {
	if reg == nil {
		return nil, ErrNilRegisterer
	}
	c := newConfig(opts)
	m := grpcprom.NewClientMetrics(
		grpcprom.WithClientCounterOptions(grpcprom.WithConstLabels(c.labels)),
		grpcprom.WithClientHandlingTimeHistogram(grpcprom.WithHistogramBuckets(c.buckets), grpcprom.WithHistogramConstLabels(c.labels)),
	)
	if err := reg.Register(m); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*grpcprom.ClientMetrics); ok {
				// Connections sharing a registry share the series.
				return &Client{m: existing}, nil
			}
		}
		return nil, fmt.Errorf("metrics: register client metrics: %w", err)
	}
	return &Client{m: m}, nil
}

// UnaryClientInterceptor records unary calls as the caller sees them.
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return c.m.UnaryClientInterceptor(grpcprom.WithExemplarFromContext(exemplar))
}

// StreamClientInterceptor records streams and their messages.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return c.m.StreamClientInterceptor(grpcprom.WithExemplarFromContext(exemplar))
}

// Handler serves the metrics of g in the Prometheus text format, or in
// OpenMetrics (which carries the exemplars) when the scraper asks for it.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
