package stage_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/interceptors/stage"
)

// A stage calls next where an interceptor would call its handler; Chain
// composes stages once, and an ordinary interceptor joins through
// FromInterceptor.
func Example() {
	timing := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, next stage.Next) (any, error) {
		fmt.Println("before", info.FullMethod)
		resp, err := next(ctx, req, info, h)
		fmt.Println("after", resp)
		return resp, err
	}
	plain := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		fmt.Println("plain interceptor")
		return h(ctx, req)
	}
	intercept := stage.Chain(timing, stage.FromInterceptor(plain))
	// grpc.NewServer(grpc.ChainUnaryInterceptor(intercept)) would install it.
	_, _ = intercept(context.Background(), "hi", &grpc.UnaryServerInfo{FullMethod: "/pkg.Svc/Get"},
		func(ctx context.Context, req any) (any, error) { return "hello", nil })
	// Output:
	// before /pkg.Svc/Get
	// plain interceptor
	// after hello
}
