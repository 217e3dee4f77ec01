package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/grpckit/grpckit/interceptors/ratelimit"
)

// The admit path is measured beside time.Now and x/time/rate in one run:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./interceptors/ratelimit/

func BenchmarkTimeNow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = time.Now()
	}
}

func BenchmarkAdmit(b *testing.B) {
	l, _ := ratelimit.New(ratelimit.WithRate(1e12, 1<<30))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(ctx, "/pkg.Svc/Method")
	}
}

func BenchmarkAdmitKeyedByMethod(b *testing.B) {
	l, _ := ratelimit.New(ratelimit.WithRate(1e12, 1<<30), ratelimit.WithKey(ratelimit.ByMethod))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(ctx, "/pkg.Svc/Method")
	}
}

func BenchmarkAdmitParallel(b *testing.B) {
	l, _ := ratelimit.New(ratelimit.WithRate(1e12, 1<<30))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow(ctx, "/pkg.Svc/Method")
		}
	})
}

// BenchmarkXRateAllow is the reference: x/time/rate's mutex and time.Now.
func BenchmarkXRateAllow(b *testing.B) {
	l := rate.NewLimiter(1e12, 1<<30)
	b.ReportAllocs()
	for b.Loop() {
		l.Allow()
	}
}
