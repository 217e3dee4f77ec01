package metrics

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	"github.com/grpckit/grpckit/internal/chain"
)

// DefaultBuckets returns the handling-time histogram buckets, in seconds: from
// 0.5 ms to 10 s, fine enough for loopback and cross-region calls alike.
func DefaultBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// Option configures [NewServer] and [NewClient].
type Option func(*config)

type config struct {
	buckets []float64
	labels  prometheus.Labels
}

// WithBuckets sets the handling-time histogram buckets, in seconds, in
// increasing order (nil or empty means prometheus.DefBuckets).
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
	c := config{buckets: DefaultBuckets()}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// ErrNilRegisterer is returned when no registerer is given.
var ErrNilRegisterer = errors.New("metrics: nil prometheus.Registerer")

// ErrInvalid is returned for options prometheus cannot use: histogram
// buckets not in increasing order, or a constant label named "le".
var ErrInvalid = errors.New("metrics: invalid option")

// Server holds the server-side collectors.
type Server struct {
	c *collector
}

// NewServer creates the server collectors and registers them on reg. If reg
// already holds them (another server shares the registry), they are shared,
// with the buckets and constant labels they were created with; opts are then
// ignored.
func NewServer(reg prometheus.Registerer, opts ...Option) (*Server, error) {
	if reg == nil {
		return nil, ErrNilRegisterer
	}
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c, err := register(reg, serverNames, cfg)
	if err != nil {
		return nil, fmt.Errorf("metrics: register server metrics: %w", err)
	}
	return &Server{c: c}, nil
}

// InitializeMetrics creates the series of every method of srv at zero, so
// that rates and alerts work before the first call: started, msg_received,
// msg_sent, the histogram, and handled for every canonical code.
func (s *Server) InitializeMetrics(srv reflection.ServiceInfoProvider) { s.c.initializeMetrics(srv) }

// UnaryServerInterceptor records unary calls.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return chain.Stage(s.c.unaryServer).Interceptor()
}

// StreamServerInterceptor records streams and their messages.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor { return s.c.streamServer }

// Client holds the client-side collectors.
type Client struct {
	c *collector
}

// NewClient creates the client collectors and registers them on reg. If reg
// already holds them (another connection shares the registry), they are
// shared, with the buckets and constant labels they were created with; opts
// are then ignored.
func NewClient(reg prometheus.Registerer, opts ...Option) (*Client, error) {
	if reg == nil {
		return nil, ErrNilRegisterer
	}
	cfg := newConfig(opts)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c, err := register(reg, clientNames, cfg)
	if err != nil {
		return nil, fmt.Errorf("metrics: register client metrics: %w", err)
	}
	return &Client{c: c}, nil
}

// UnaryClientInterceptor records unary calls as the caller sees them.
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor { return c.c.unaryClient }

// StreamClientInterceptor records streams and their messages.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor { return c.c.streamClient }

// Handler serves the metrics of g in the Prometheus text format, or in
// OpenMetrics (which carries the exemplars) when the scraper asks for it.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
