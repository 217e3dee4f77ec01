package client_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// Responses larger than the windows arrive whole, with the fixed default
// windows and with grpc-go's growing ones.
func TestWindowSizes(t *testing.T) {
	srv := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithAccessLog(false))
	msg := strings.Repeat("x", 512<<10)
	for _, tc := range []struct {
		name string
		opts []client.Option
	}{
		{"default", nil},
		{"grpc-go's", []client.Option{client.WithWindowSize(0, 0)}},
		{"smallest", []client.Option{client.WithWindowSize(64<<10, 64<<10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := srv.Dial(t, append([]client.Option{grpckit.WithAccessLog(false)}, tc.opts...)...)
			stream, err := echov1.NewEchoServiceClient(conn).ServerStream(grpckittest.Context(t, time.Minute),
				&echov1.ServerStreamRequest{Message: msg, Count: 24})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				resp, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d messages: %v", n, err)
				}
				if len(resp.GetMessage()) != len(msg) {
					t.Fatalf("message %d: %d bytes, want %d", n, len(resp.GetMessage()), len(msg))
				}
				n++
			}
			if n != 24 {
				t.Errorf("%d messages, want 24 (12 MiB, more than the windows)", n)
			}
		})
	}
	for _, w := range [][2]int32{{1, 1 << 20}, {1 << 20, 0}, {-1, -1}} {
		if _, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure(), client.WithWindowSize(w[0], w[1])); err == nil {
			t.Errorf("WithWindowSize(%d, %d): no error", w[0], w[1])
		}
	}
}
