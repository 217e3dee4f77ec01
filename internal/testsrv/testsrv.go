// Package testsrv starts real grpckit servers and clients on loopback for
// tests and benchmarks, and stops them with t.Cleanup.
package testsrv

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/internal/echo"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// Instance is a running echo server.
type Instance struct {
	Server *server.Server
	Echo   *echo.Server
	Addr   string
	served chan error
}

// Start builds a server with opts, registers the echo service, serves it on
// 127.0.0.1:0, and closes it when the test ends.
func Start(tb testing.TB, opts ...server.Option) *Instance {
	tb.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	in := &Instance{Server: srv, Echo: &echo.Server{}, served: make(chan error, 1)}
	echov1.RegisterEchoServiceServer(srv, in.Echo)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	in.Addr = lis.Addr().String()
	go func() { in.served <- srv.Serve(lis) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		if err := in.Wait(5 * time.Second); err != nil && !errors.Is(err, server.ErrServerClosed) {
			tb.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return in
}

// Serve builds a server with opts, serves impl on 127.0.0.1:0 until the
// test ends, and returns its address. Use it for echo implementations other
// than the standard one.
func Serve(tb testing.TB, impl echov1.EchoServiceServer, opts ...server.Option) string {
	tb.Helper()
	srv, err := server.New(opts...)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	echov1.RegisterEchoServiceServer(srv, impl)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	tb.Cleanup(func() { _ = srv.Close(); <-done })
	return lis.Addr().String()
}

// errTimeout is returned by Wait when Serve has not returned in time.
var errTimeout = errors.New("testsrv: Serve did not return")

// Wait waits up to d for Serve to return and returns its error. Once it has
// returned, Wait returns ErrServerClosed.
func (in *Instance) Wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-in.served:
		in.served <- server.ErrServerClosed
		return err
	case <-t.C:
		return errTimeout
	}
}

// Dial builds a plaintext client for addr with opts and closes it when the
// test ends.
func Dial(tb testing.TB, addr string, opts ...client.Option) *client.Conn {
	tb.Helper()
	conn, err := client.New("passthrough:///"+addr, append([]client.Option{client.WithInsecure()}, opts...)...)
	if err != nil {
		tb.Fatalf("client.New: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Echo returns an echo client on conn.
func Echo(conn *client.Conn) echov1.EchoServiceClient { return echov1.NewEchoServiceClient(conn) }

// Ctx returns a context that ends after d or when the test ends.
func Ctx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// Relay is an echo server that answers the message "relay" by calling Next
// with "leaf" (with the context it was called with), and echoes anything
// else: a middle hop for tests of what crosses a chain of calls.
type Relay struct {
	echo.Server
	Next echov1.EchoServiceClient
}

// Echo implements echov1.EchoServiceServer.
func (r *Relay) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if req.GetMessage() == "relay" {
		return r.Next.Echo(ctx, &echov1.EchoRequest{Message: "leaf"})
	}
	return r.Server.Echo(ctx, req)
}
