package logging_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/grpckit/grpckit/interceptors/logging"
)

// BenchmarkUnaryServer measures the interceptor around a no-op handler, for
// a line written (JSON to io.Discard) and a line filtered out, beside
// time.Now from the same run.
//
//	go test -run '^$' -bench . -benchmem ./interceptors/logging
func BenchmarkUnaryServer(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}})
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	for _, tc := range []struct {
		name  string
		level slog.Level
	}{{"emitting", slog.LevelInfo}, {"filtered", slog.LevelWarn}} {
		b.Run(tc.name, func(b *testing.B) {
			l := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: tc.level}))
			i := logging.UnaryServerInterceptor(logging.WithLogger(l))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = i(ctx, nil, info, handler)
			}
		})
	}
}

// BenchmarkTimeNow is the yardstick.
func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}
