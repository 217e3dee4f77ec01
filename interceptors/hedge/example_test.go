package hedge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/hedge"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func ExampleUnaryClientInterceptor() {
	h, err := hedge.New(
		hedge.WithMethods("/pkg.Svc/Get"),
		hedge.WithDelay(10*time.Millisecond), // or WithPercentile(95, ...), the default
		hedge.WithBudget(0.1, 10))
	if err != nil {
		panic(err)
	}
	intercept := hedge.UnaryClientInterceptor(h)
	// The first attempt hangs; the hedge, 10 ms later, answers.
	var attempts atomic.Int32
	invoker := func(ctx context.Context, _ string, _, reply any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		n := attempts.Add(1)
		if n == 1 {
			<-ctx.Done() // cancelled once the hedge has answered
			return status.FromContextError(ctx.Err()).Err()
		}
		reply.(*echov1.EchoResponse).Message = fmt.Sprintf("attempt %d", n)
		return nil
	}
	reply := &echov1.EchoResponse{}
	err = intercept(context.Background(), "/pkg.Svc/Get", nil, reply, nil, invoker)
	fmt.Println(status.Code(err), reply.GetMessage())
	// Output:
	// OK attempt 2
}
