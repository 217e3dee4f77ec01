package retry_test

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/retry"
)

func ExampleUnaryClientInterceptor() {
	r, err := retry.New(
		retry.WithMethods(retry.Policy{MaxAttempts: 3, InitialBackoff: time.Millisecond}, "/pkg.Svc/Get"),
		retry.WithBudget(0.1, 10))
	if err != nil {
		panic(err)
	}
	intercept := retry.UnaryClientInterceptor(r)
	attempts := 0
	flaky := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		attempts++
		if attempts < 3 {
			return status.Error(codes.Unavailable, "try again")
		}
		return nil
	}
	err = intercept(context.Background(), "/pkg.Svc/Get", nil, nil, nil, flaky)
	fmt.Println(status.Code(err), attempts)

	attempts = 0 // not idempotent: one attempt
	err = intercept(context.Background(), "/pkg.Svc/Create", nil, nil, nil, flaky)
	fmt.Println(status.Code(err), attempts)
	// Output:
	// OK 3
	// Unavailable 1
}
