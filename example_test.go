package grpckit_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// echoServer answers Echo with the request's message.
type echoServer struct {
	echov1.UnimplementedEchoServiceServer
}

func (echoServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// A server and a client share one logger and one metrics registry: the
// same two options configure both, so both sides write their access-log
// line to the logger and record their series on the registry.
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
	reg := prometheus.NewRegistry()
	logs, metrics := grpckit.WithLogger(logger), grpckit.WithMetrics(reg)

	srv, err := server.New(grpckit.WithInsecure(), logs, metrics)
	if err != nil {
		log.Fatal(err)
	}
	echov1.RegisterEchoServiceServer(srv, echoServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)

	conn, err := client.New("passthrough:///"+lis.Addr().String(), grpckit.WithInsecure(), logs, metrics)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
		log.Fatal(err)
	}

	// Both sides counted the call on the one registry (Gather sorts the
	// series by name).
	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "grpc_client_handled_total", "grpc_server_handled_total":
			var calls float64 // summed over methods and codes
			for _, m := range f.GetMetric() {
				calls += m.GetCounter().GetValue()
			}
			fmt.Println(f.GetName(), calls)
		}
	}

	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// level=INFO msg="finished call" protocol=grpc grpc.component=server grpc.service=grpckit.echo.v1.EchoService grpc.method=Echo grpc.method_type=unary grpc.code=OK
	// level=INFO msg="finished call" protocol=grpc grpc.component=client grpc.service=grpckit.echo.v1.EchoService grpc.method=Echo grpc.method_type=unary grpc.code=OK
	// grpc_client_handled_total 1
	// grpc_server_handled_total 1
}
