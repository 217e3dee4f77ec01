package shed_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/shed"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// busyServer holds a call with the message "hold" until release is closed.
type busyServer struct {
	echov1.UnimplementedEchoServiceServer
	holding, release chan struct{}
}

func (b *busyServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if req.GetMessage() == "hold" {
		b.holding <- struct{}{}
		<-b.release
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// The shedder learns from the calls it admits how many the server can
// have in flight; a call beyond that fails at once with ResourceExhausted.
// A limit of one call makes it easy to see.
func Example() {
	s, err := shed.New(shed.WithMinLimit(1))
	if err != nil {
		log.Fatal(err)
	}
	busy := &busyServer{holding: make(chan struct{}), release: make(chan struct{})}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(shed.UnaryServerInterceptor(s)),
		grpc.ChainStreamInterceptor(shed.StreamServerInterceptor(s)))
	echov1.RegisterEchoServiceServer(srv, busy)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	echo := echov1.NewEchoServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Nothing is shed until the window holds a measurement: one call, then
	// the end of its bucket (100 ms by default).
	if _, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
		log.Fatal(err)
	}
	for s.Limit() == math.MaxInt {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("limit:", s.Limit())

	// One call holds the server; the next one is shed.
	held := make(chan error)
	go func() {
		_, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hold"})
		held <- err
	}()
	<-busy.holding
	_, err = echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	fmt.Println(status.Code(err), status.Convert(err).Message())
	close(busy.release)
	fmt.Println("held call:", status.Code(<-held))
	// Output:
	// limit: 1
	// ResourceExhausted server overloaded
	// held call: OK
}
