package breaker_test

import (
	"context"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/interceptors/breaker"
)

// The admit path (admission, the call, completion) through the interceptor
// with an invoker that does nothing, beside time.Now and gobreaker:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./interceptors/breaker/

func nop(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }

func BenchmarkTimeNow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = time.Now()
	}
}

func benchPolicy(b *testing.B, p breaker.Policy) {
	i := breaker.UnaryClientInterceptor(p)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = i(ctx, "/pkg.Svc/Method", nil, nil, nil, nop)
	}
}

func BenchmarkAdmit(b *testing.B) {
	br, _ := breaker.New("bench")
	benchPolicy(b, br)
}

// BenchmarkAdmitDeadline is a call whose context has a deadline, as every
// call through the client builder's default deadline has.
func BenchmarkAdmitDeadline(b *testing.B) {
	br, _ := breaker.New("bench")
	i := breaker.UnaryClientInterceptor(br)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		_ = i(ctx, "/pkg.Svc/Method", nil, nil, nil, nop)
	}
}

func BenchmarkAdmitParallel(b *testing.B) {
	br, _ := breaker.New("bench")
	i := breaker.UnaryClientInterceptor(br)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = i(ctx, "/pkg.Svc/Method", nil, nil, nil, nop)
		}
	})
}

func BenchmarkThrottleAdmit(b *testing.B) {
	th, _ := breaker.NewThrottle("bench")
	benchPolicy(b, th)
}

// BenchmarkGobreakerExecute is the reference: gobreaker's own path.
func BenchmarkGobreakerExecute(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = cb.Execute(func() (any, error) { return nil, nil })
	}
}

// BenchmarkGobreakerTwoStep is gobreaker's two-step API.
func BenchmarkGobreakerTwoStep(b *testing.B) {
	cb := gobreaker.NewTwoStepCircuitBreaker[any](gobreaker.Settings{})
	b.ReportAllocs()
	for b.Loop() {
		done, err := cb.Allow()
		if err == nil {
			done(nil)
		}
	}
}
