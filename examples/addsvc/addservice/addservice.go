// Package addservice implements grpckit.addsvc.v1.AddService, go-kit's
// classic example: Sum adds two integers and refuses to overflow, Concat
// joins two strings and refuses results over a length limit.
package addservice

import (
	"context"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

// DefaultMaxLen is the longest result Concat returns, in bytes.
const DefaultMaxLen = 1024

// Service is the add service.
type Service struct {
	addsvcv1.UnimplementedAddServiceServer
	maxLen int
}

// New returns a service whose Concat results are at most maxLen bytes;
// maxLen <= 0 means [DefaultMaxLen].
func New(maxLen int) *Service {
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	return &Service{maxLen: maxLen}
}

// Sum returns a + b, or InvalidArgument if that overflows an int64.
func (s *Service) Sum(_ context.Context, req *addsvcv1.SumRequest) (*addsvcv1.SumResponse, error) {
	a, b := req.GetA(), req.GetB()
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return nil, status.Errorf(codes.InvalidArgument, "addservice: %d + %d overflows int64", a, b)
	}
	return &addsvcv1.SumResponse{V: a + b}, nil
}

// Concat returns a + b, or InvalidArgument if that is longer than the limit.
func (s *Service) Concat(_ context.Context, req *addsvcv1.ConcatRequest) (*addsvcv1.ConcatResponse, error) {
	if n := len(req.GetA()) + len(req.GetB()); n > s.maxLen {
		return nil, status.Errorf(codes.InvalidArgument, "addservice: result of %d bytes exceeds the limit of %d", n, s.maxLen)
	}
	return &addsvcv1.ConcatResponse{V: req.GetA() + req.GetB()}, nil
}
