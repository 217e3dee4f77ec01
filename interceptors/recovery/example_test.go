package recovery_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/recovery"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// buggyServer panics on the message "boom".
type buggyServer struct {
	echov1.UnimplementedEchoServiceServer
}

func (buggyServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if req.GetMessage() == "boom" {
		panic("oops")
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// A panicking handler fails its own call with Internal and a generic
// message; the panic and its stack go to the logger, never to the client,
// and the server keeps serving.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		// Leave out the time, and the stack for brevity.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "stack" {
				return slog.Attr{}
			}
			return a
		},
	}))
	opt := recovery.WithLogger(logger)
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(recovery.UnaryServerInterceptor(opt)),
		grpc.ChainStreamInterceptor(recovery.StreamServerInterceptor(opt)))
	echov1.RegisterEchoServiceServer(s, buggyServer{})
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

	_, err = echo.Echo(context.Background(), &echov1.EchoRequest{Message: "boom"})
	fmt.Println(status.Code(err), status.Convert(err).Message())
	res, err := echo.Echo(context.Background(), &echov1.EchoRequest{Message: "still up"})
	fmt.Println(res.GetMessage(), err)
	// Output:
	// level=ERROR msg="grpc handler panicked" grpc.service=grpckit.echo.v1.EchoService grpc.method=Echo panic=oops
	// Internal internal error
	// still up <nil>
}
