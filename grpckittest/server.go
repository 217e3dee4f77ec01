package grpckittest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/server"
)

// Server is a grpckit server serving for one test. It is closed when the
// test ends; stop it earlier with Server.Shutdown or Server.Close.
type Server struct {
	// Server is the server built by server.New.
	Server *server.Server
	// Addr is the address the server listens on: 127.0.0.1:port for
	// [NewServer], "bufconn" for [NewBufconnServer] (reachable only
	// through [Server.Dial]).
	Addr string

	dialer func(context.Context, string) (net.Conn, error) // bufconn only
	done   chan struct{}                                   // closed when Serve returns
	err    error                                           // what Serve returned
}

// bufconnSize is the buffer of a NewBufconnServer listener, in bytes.
const bufconnSize = 1 << 20

// NewServer builds a server with server.New(opts...), in plaintext
// (grpckit.WithInsecure) unless opts choose other transport security, lets register
// register its services (nil registers none: the server still has health
// and reflection), and serves it on 127.0.0.1:0 until the test ends. It
// fails the test if the server cannot be built or does not listen; at the
// end of the test it closes the server and fails the test if Serve
// returned anything but server.ErrServerClosed.
func NewServer(tb testing.TB, register func(grpc.ServiceRegistrar), opts ...server.Option) *Server {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("grpckittest: listen: %v", err)
	}
	return serve(tb, lis, nil, register, opts)
}

// NewBufconnServer is [NewServer] on an in-memory listener
// (google.golang.org/grpc/test/bufconn, with 1 MiB of buffer)
// instead of a TCP port. Only [Server.Dial] reaches it.
func NewBufconnServer(tb testing.TB, register func(grpc.ServiceRegistrar), opts ...server.Option) *Server {
	tb.Helper()
	lis := bufconn.Listen(bufconnSize)
	return serve(tb, lis, func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }, register, opts)
}

func serve(tb testing.TB, lis net.Listener, dialer func(context.Context, string) (net.Conn, error), register func(grpc.ServiceRegistrar), opts []server.Option) *Server {
	tb.Helper()
	srv, err := server.New(append([]server.Option{grpckit.WithInsecure()}, opts...)...)
	if err != nil {
		_ = lis.Close()
		tb.Fatalf("grpckittest: server.New: %v", err)
	}
	if register != nil {
		register(srv)
	}
	s := &Server{Server: srv, Addr: lis.Addr().String(), dialer: dialer, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = srv.Serve(lis)
	}()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-s.done
		if !errors.Is(s.err, server.ErrServerClosed) {
			tb.Errorf("grpckittest: Serve returned %v, want server.ErrServerClosed", s.err)
		}
	})
	return s
}

// Wait waits until Serve returns (after Server.Shutdown or Server.Close,
// or at the end of the test) and returns what it returned, or ctx's error
// if ctx ends first.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dial builds a client of s with client.New and opts, and closes it when
// the test ends; see [Dial]. The client is in plaintext unless opts choose
// TLS (grpckit.WithTLS).
func (s *Server) Dial(tb testing.TB, opts ...client.Option) *client.Conn {
	tb.Helper()
	if s.dialer != nil {
		opts = append([]client.Option{client.WithDialOptions(grpc.WithContextDialer(s.dialer))}, opts...)
	}
	return Dial(tb, "passthrough:///"+s.Addr, opts...)
}

// Dial builds a client for target with client.New and opts, and closes it
// when the test ends. The client is in plaintext (grpckit.WithInsecure)
// unless opts choose other transport security (grpckit.WithTLS,
// grpckit.WithTransportCredentials). Like client.New, it does not wait
// for a connection. It fails the test if client.New fails.
func Dial(tb testing.TB, target string, opts ...client.Option) *client.Conn {
	tb.Helper()
	conn, err := client.New(target, append([]client.Option{grpckit.WithInsecure()}, opts...)...)
	if err != nil {
		tb.Fatalf("grpckittest: client.New(%q): %v", target, err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Context returns a context that ends after d or when the test ends,
// whichever comes first: the deadline a test's calls should have.
func Context(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
