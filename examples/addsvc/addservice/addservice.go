// Package addservice implements grpckit.addsvc.v1.AddService, go-kit's
// classic example: Sum adds two integers and refuses to overflow, Concat
// joins two strings and refuses results over a length limit. With
// [WithMetrics] it records business metrics (see [Metrics]) beside the
// gRPC series grpckit records for every call.
package addservice

import (
	"context"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/metrics"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

// DefaultMaxLen is the longest result Concat returns, in bytes.
const DefaultMaxLen = 1024

// Service is the add service.
type Service struct {
	addsvcv1.UnimplementedAddServiceServer
	maxLen int
	m      *Metrics // nil: none
}

// Option configures [New].
type Option func(*Service)

// WithMetrics records the service's business metrics on m. Default: none.
func WithMetrics(m *Metrics) Option {
	return func(s *Service) { s.m = m }
}

// New returns a service whose Concat results are at most maxLen bytes;
// maxLen <= 0 means [DefaultMaxLen].
func New(maxLen int, opts ...Option) *Service {
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	s := &Service{maxLen: maxLen}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

// Sum returns a + b, or InvalidArgument if that overflows an int64.
func (s *Service) Sum(_ context.Context, req *addsvcv1.SumRequest) (*addsvcv1.SumResponse, error) {
	a, b := req.GetA(), req.GetB()
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		if s.m != nil {
			s.m.overflow.Inc()
		}
		return nil, status.Errorf(codes.InvalidArgument, "addservice: %d + %d overflows int64", a, b)
	}
	if s.m != nil {
		s.m.sums.Inc()
	}
	return &addsvcv1.SumResponse{V: a + b}, nil
}

// Concat returns a + b, or InvalidArgument if that is longer than the limit.
func (s *Service) Concat(_ context.Context, req *addsvcv1.ConcatRequest) (*addsvcv1.ConcatResponse, error) {
	n := len(req.GetA()) + len(req.GetB())
	if n > s.maxLen {
		if s.m != nil {
			s.m.tooLong.Inc()
		}
		return nil, status.Errorf(codes.InvalidArgument, "addservice: result of %d bytes exceeds the limit of %d", n, s.maxLen)
	}
	if s.m != nil {
		s.m.concatLen.Observe(float64(n))
	}
	return &addsvcv1.ConcatResponse{V: req.GetA() + req.GetB()}, nil
}

// Metrics are the add service's business metrics:
//
//   - addsvc_sums_total: the sums computed;
//   - addsvc_concat_length_bytes: a histogram of the lengths of the
//     strings Concat returned, in buckets up to 4, 16, 64, 256, 1024 and
//     4096 bytes (its _count: the concatenations made);
//   - addsvc_refused_total{op, reason}: the calls the service refused,
//     op="sum" reason="overflow" and op="concat" reason="too_long".
//
// Its series are bound to their label values once, in [NewMetrics]: a
// call records without allocating.
type Metrics struct {
	sums              metrics.CounterChild
	concatLen         metrics.HistogramChild
	overflow, tooLong metrics.CounterChild
}

// NewMetrics creates the service's metrics on p. With p =
// metrics.Prometheus(srv.Registry()) they are served on the same /metrics
// as the server's gRPC series. Several services may share one Metrics,
// or make their own on the same provider: they then count together.
func NewMetrics(p metrics.Provider) (*Metrics, error) {
	sums, err := p.Counter("addsvc_sums_total", "Sums computed.")
	if err != nil {
		return nil, err
	}
	lens, err := p.Histogram("addsvc_concat_length_bytes", "Lengths of the strings Concat returned, in bytes.", []float64{4, 16, 64, 256, 1024, 4096})
	if err != nil {
		return nil, err
	}
	refused, err := p.Counter("addsvc_refused_total", "Calls refused by the service's rules, by operation and reason.", "op", "reason")
	if err != nil {
		return nil, err
	}
	return &Metrics{
		sums:      sums.With(),
		concatLen: lens.With(),
		overflow:  refused.With("sum", "overflow"),
		tooLong:   refused.With("concat", "too_long"),
	}, nil
}
