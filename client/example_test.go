package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// deadlineEcho answers Echo with whether the call arrived with a deadline.
type deadlineEcho struct {
	echov1.UnimplementedEchoServiceServer
}

func (deadlineEcho) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	_, ok := ctx.Deadline()
	return &echov1.EchoResponse{Message: fmt.Sprintf("%s (deadline: %v)", req.GetMessage(), ok)}, nil
}

// Build a connection, put the generated client on top, call. The call
// carries the default deadline (WithDefaultTimeout) to the server.
func Example() {
	// Any gRPC server will do; grpc-go's own here.
	s := grpc.NewServer()
	echov1.RegisterEchoServiceServer(s, deadlineEcho{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()

	conn, err := client.New("passthrough:///"+lis.Addr().String(),
		grpckit.WithInsecure(), // plaintext must be asked for
		client.WithDefaultTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	echo := echov1.NewEchoServiceClient(conn)
	res, err := echo.Echo(context.Background(), &echov1.EchoRequest{Message: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetMessage())
	// Output: hello (deadline: true)
}

// Transport security is never chosen for you: without grpckit.WithTLS,
// grpckit.WithTransportCredentials or WithInsecure, New fails.
func ExampleNew_noCredentials() {
	_, err := client.New("dns:///echo.example.internal:443")
	fmt.Println(errors.Is(err, client.ErrNoCredentials))
	// Output: true
}
