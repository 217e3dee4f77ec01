package timeout_test

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/interceptors/timeout"
)

// The interceptor gives a call without a deadline one, and leaves a
// caller's own deadline alone, longer or shorter.
func ExampleUnaryClientInterceptor() {
	in := timeout.UnaryClientInterceptor(2 * time.Second)
	show := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		d, ok := ctx.Deadline()
		if !ok {
			fmt.Println("no deadline")
			return nil
		}
		fmt.Println("deadline in about", time.Until(d).Round(time.Second))
		return nil
	}
	_ = in(context.Background(), "/pkg.Svc/M", nil, nil, nil, show)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = in(ctx, "/pkg.Svc/M", nil, nil, nil, show)

	_ = timeout.UnaryClientInterceptor(0)(context.Background(), "/pkg.Svc/M", nil, nil, nil, show)
	// Output:
	// deadline in about 2s
	// deadline in about 1m0s
	// no deadline
}
