package client_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// WithValidation validates requests at SlotUser, before the user's
// interceptors there: an invalid request (EchoRequest.message has
// max_len = 1024) fails with InvalidArgument, seen by the outer slots,
// and is never sent.
func TestWithValidation(t *testing.T) {
	var calls atomic.Int64
	b := &grpckittest.Backend{Handler: func(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		calls.Add(1)
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}}
	in := grpckittest.NewServer(t, b.Register)
	var mu sync.Mutex
	var seen []string
	note := func(name string) client.Option {
		return client.WithUnaryInterceptor(map[string]client.Slot{"ratelimit": client.SlotRateLimit, "user": client.SlotUser}[name],
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				mu.Lock()
				seen = append(seen, name)
				mu.Unlock()
				return invoker(ctx, method, req, reply, cc, opts...)
			})
	}
	ec := echov1.NewEchoServiceClient(in.Dial(t, grpckit.WithLogger(slog.New(slog.DiscardHandler)),
		client.WithValidation(), note("ratelimit"), note("user")))
	ctx := grpckittest.Context(t, 10*time.Second)

	for _, tc := range []struct {
		name  string
		msg   string
		want  codes.Code
		seen  []string
		calls int64
	}{
		{"valid", "hi", codes.OK, []string{"ratelimit", "user"}, 1},
		{"invalid", strings.Repeat("x", 1025), codes.InvalidArgument, []string{"ratelimit"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			mu.Lock()
			seen = nil
			mu.Unlock()
			_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: tc.msg})
			if code := status.Code(err); code != tc.want {
				t.Fatalf("Echo: got %v, want %v", err, tc.want)
			}
			if got := calls.Load() - before; got != tc.calls {
				t.Errorf("server calls %d, want %d", got, tc.calls)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(seen, tc.seen) {
				t.Errorf("slots seen %v, want %v", seen, tc.seen)
			}
		})
	}
}
