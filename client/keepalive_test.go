package client_test

import (
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// An idle stream from a default client to a bare grpc-go server with its
// default keepalive enforcement (pings at most every 5 min, none without
// streams) survives: a client pinging every 30 s was cut off with GOAWAY
// "too_many_pings" after about 2 minutes (the third early ping). Real
// defaults on both sides; the stream stays idle for 150 s, past the point
// where the old default failed (the test runs in parallel with the rest).
func TestIdleStreamSurvivesBareServerDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("idles for 150 s")
	}
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bare := grpc.NewServer() // grpc-go's defaults, enforcement included
	echov1.RegisterEchoServiceServer(bare, &grpckittest.Backend{})
	served := make(chan error, 1)
	go func() { served <- bare.Serve(lis) }()
	t.Cleanup(func() {
		bare.Stop()
		<-served
	})

	conn := grpckittest.Dial(t, "passthrough:///"+lis.Addr().String()) // the builder's defaults
	ctx := grpckittest.Context(t, 5*time.Minute)
	stream, err := echov1.NewEchoServiceClient(conn).BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func(msg string) {
		t.Helper()
		if err := stream.Send(&echov1.BidiStreamRequest{Message: msg}); err != nil {
			t.Fatalf("send %q: %v", msg, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv after %q: got %v, want the echo", msg, err)
		}
		if resp.GetMessage() != msg {
			t.Fatalf("recv: got %q, want %q", resp.GetMessage(), msg)
		}
	}
	roundTrip("before")

	// Watch the connection while the stream idles: a GOAWAY would move
	// it out of READY.
	left := make(chan connectivity.State, 1)
	watchCtx := grpckittest.Context(t, 150*time.Second)
	go func() {
		conn.WaitForStateChange(watchCtx, connectivity.Ready)
		left <- conn.GetState()
	}()
	select {
	case st := <-left:
		if watchCtx.Err() == nil {
			t.Fatalf("connection while the stream idled: got %v, want READY throughout", st)
		}
	case <-watchCtx.Done():
		<-left
	}
	roundTrip("after")
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
}
