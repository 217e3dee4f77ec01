package echov1_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// echoServer implements two of the four methods; the others answer
// Unimplemented.
type echoServer struct {
	echov1.UnimplementedEchoServiceServer
}

func (echoServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

func (echoServer) ServerStream(req *echov1.ServerStreamRequest, stream echov1.EchoService_ServerStreamServer) error {
	for i := range req.GetCount() {
		if err := stream.Send(&echov1.ServerStreamResponse{Message: req.GetMessage(), Index: i}); err != nil {
			return err
		}
	}
	return nil
}

// Serve the generated service and call it, unary and streaming.
func Example() {
	s := grpc.NewServer()
	echov1.RegisterEchoServiceServer(s, echoServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()

	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	echo := echov1.NewEchoServiceClient(conn)
	ctx := context.Background()

	res, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetMessage())

	stream, err := echo.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "again", Count: 2})
	if err != nil {
		log.Fatal(err)
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(msg.GetIndex(), msg.GetMessage())
	}
	// Output:
	// hello
	// 0 again
	// 1 again
}
