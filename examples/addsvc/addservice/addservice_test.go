package addservice_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

func TestSum(t *testing.T) {
	s := addservice.New(0)
	for _, tc := range []struct {
		name string
		a, b int64
		want int64
		code codes.Code
	}{
		{"small", 2, 3, 5, codes.OK},
		{"negative", -7, 3, -4, codes.OK},
		{"max", math.MaxInt64 - 1, 1, math.MaxInt64, codes.OK},
		{"overflow", math.MaxInt64, 1, 0, codes.InvalidArgument},
		{"underflow", math.MinInt64, -1, 0, codes.InvalidArgument},
		{"min", math.MinInt64 + 1, -1, math.MinInt64, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Sum(context.Background(), &addsvcv1.SumRequest{A: tc.a, B: tc.b})
			if status.Code(err) != tc.code || r.GetV() != tc.want {
				t.Fatalf("Sum(%d, %d) = %d, %v; want %d, %v", tc.a, tc.b, r.GetV(), err, tc.want, tc.code)
			}
		})
	}
}

func TestConcat(t *testing.T) {
	s := addservice.New(8)
	if r, err := s.Concat(context.Background(), &addsvcv1.ConcatRequest{A: "abcd", B: "efgh"}); err != nil || r.GetV() != "abcdefgh" {
		t.Fatalf("Concat at the limit = %q, %v; want abcdefgh", r.GetV(), err)
	}
	_, err := s.Concat(context.Background(), &addsvcv1.ConcatRequest{A: "abcd", B: strings.Repeat("e", 5)})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Concat over the limit: got %v, want InvalidArgument", err)
	}
}
