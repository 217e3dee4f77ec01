// Package baregrpc starts bare grpc-go servers and clients, with nothing of
// grpckit's builders, for the tests of the interceptor packages: each tests
// its interceptors on grpc.NewServer and grpc.NewClient alone, while the
// builders' tests (with grpckittest) prove how the builders assemble them.
// Everything it starts ends with the test.
package baregrpc

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Serve builds grpc.NewServer(opts...), lets register register its
// services, serves it on 127.0.0.1:0 until the test ends (then stops it
// and waits for Serve to return) and returns its address.
func Serve(tb testing.TB, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("baregrpc: listen: %v", err)
	}
	s := grpc.NewServer(opts...)
	if register != nil {
		register(s)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	tb.Cleanup(func() { s.Stop(); <-done })
	return lis.Addr().String()
}

// Dial builds a plaintext grpc.NewClient for addr with opts and closes it
// when the test ends.
func Dial(tb testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	tb.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr,
		append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		tb.Fatalf("baregrpc: grpc.NewClient: %v", err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}
