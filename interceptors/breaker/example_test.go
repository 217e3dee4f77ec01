package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/breaker"
)

func ExampleUnaryClientInterceptor() {
	b, err := breaker.New("dns:///backend:443", breaker.WithThreshold(2),
		breaker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		panic(err)
	}
	intercept := breaker.UnaryClientInterceptor(b)
	down := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		return status.Error(codes.Unavailable, "connection refused")
	}
	for range 3 {
		err := intercept(context.Background(), "/pkg.Svc/Method", nil, nil, nil, down)
		fmt.Println(status.Code(err), errors.Is(err, breaker.ErrRejected))
	}
	fmt.Println(b.State("/pkg.Svc/Method"))
	// Output:
	// Unavailable false
	// Unavailable false
	// Unavailable true
	// open
}
