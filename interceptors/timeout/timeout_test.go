package timeout_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/timeout"
	"github.com/grpckit/grpckit/internal/baregrpc"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// On a bare grpc-go client, a call without a deadline gets the default one,
// which reaches the server and ends a call that takes longer; a caller's
// own deadline, even a longer one, is kept.
func TestDefaultDeadlineOnBareClient(t *testing.T) {
	const d = time.Second
	var mu sync.Mutex
	var seen []time.Duration // the deadline each call arrived with; -1: none
	b := &grpckittest.Backend{}
	addr := baregrpc.Serve(t, b.Register, grpc.ChainUnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			left := time.Duration(-1)
			if dl, ok := ctx.Deadline(); ok {
				left = time.Until(dl)
			}
			mu.Lock()
			seen = append(seen, left)
			mu.Unlock()
			return h(ctx, req)
		}))
	ec := echov1.NewEchoServiceClient(baregrpc.Dial(t, addr, grpc.WithChainUnaryInterceptor(timeout.UnaryClientInterceptor(d))))

	b.Faults.Next(1, grpckittest.Fault{Hang: true})
	if _, err := ec.Echo(context.Background(), &echov1.EchoRequest{Message: "hang"}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call without a deadline to a hanging handler: got %v, want DeadlineExceeded", err)
	}
	b.Faults.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
		t.Fatalf("call with its own deadline: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] <= 0 || seen[0] > d || seen[1] < 50*time.Second {
		t.Fatalf("deadlines the server saw: got %v, want at most %v, then about 1m", seen, d)
	}
}
