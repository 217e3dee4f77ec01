package logging_test

import (
	"context"
	"log"
	"log/slog"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/logging"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// echoServer echoes a message and refuses an empty one.
type echoServer struct {
	echov1.UnimplementedEchoServiceServer
}

func (echoServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if req.GetMessage() == "" {
		return nil, status.Error(codes.InvalidArgument, "empty message")
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// One line per finished call on each side, at a level that follows the
// code: INFO for OK, WARN for a caller's mistake.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		// Leave out what changes from run to run.
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "grpc.time_ms", "peer.address":
				return slog.Attr{}
			}
			return a
		},
	}))
	opt := logging.WithLogger(logger)

	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(logging.UnaryServerInterceptor(opt)),
		grpc.ChainStreamInterceptor(logging.StreamServerInterceptor(opt)))
	echov1.RegisterEchoServiceServer(s, echoServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()

	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(logging.UnaryClientInterceptor(opt)),
		grpc.WithChainStreamInterceptor(logging.StreamClientInterceptor(opt)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	echo := echov1.NewEchoServiceClient(conn)

	_, _ = echo.Echo(context.Background(), &echov1.EchoRequest{Message: "hi"})
	_, _ = echo.Echo(context.Background(), &echov1.EchoRequest{})
	// Output:
	// level=INFO msg="finished call" protocol=grpc grpc.component=server grpc.service=grpckit.echo.v1.EchoService grpc.method=Echo grpc.method_type=unary grpc.code=OK
	// level=INFO msg="finished call" protocol=grpc grpc.component=client grpc.service=grpckit.echo.v1.EchoService grpc.method=Echo grpc.method_type=unary grpc.code=OK
	// level=WARN msg="finished call" protocol=grpc grpc.component=server grpc.service=grpckit.echo.v1.EchoService grpc.method=Echo grpc.method_type=unary grpc.code=InvalidArgument grpc.error="empty message"
	// level=WARN msg="finished call" protocol=grpc grpc.component=client grpc.service=grpckit.echo.v1.EchoService grpc.method=Echo grpc.method_type=unary grpc.code=InvalidArgument grpc.error="empty message"
}
