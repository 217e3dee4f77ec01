package tracing_test

import (
	"context"
	"fmt"
	"log"
	"net"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpckit/grpckit/interceptors/tracing"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

type echoServer struct {
	echov1.UnimplementedEchoServiceServer
}

func (echoServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// One call, two spans of one trace: the server's and the client's. Spans
// go to an in-memory exporter here; in production, to an OTLP exporter.
func Example() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	opt := tracing.WithTracerProvider(tp)

	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(tracing.UnaryServerInterceptor(opt)),
		grpc.ChainStreamInterceptor(tracing.StreamServerInterceptor(opt)))
	echov1.RegisterEchoServiceServer(s, echoServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()

	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(tracing.UnaryClientInterceptor(opt)),
		grpc.WithChainStreamInterceptor(tracing.StreamClientInterceptor(opt)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if _, err := echov1.NewEchoServiceClient(conn).Echo(context.Background(), &echov1.EchoRequest{Message: "hi"}); err != nil {
		log.Fatal(err)
	}

	spans := exp.GetSpans() // the server's ends first
	for _, span := range spans {
		fmt.Println(span.SpanKind, span.Name)
		for _, a := range span.Attributes {
			if a.Key != "server.port" { // changes from run to run
				fmt.Printf("  %s=%s\n", a.Key, a.Value.String())
			}
		}
	}
	fmt.Println("one trace:", spans[0].SpanContext.TraceID() == spans[1].SpanContext.TraceID())
	fmt.Println("client span is the parent:", spans[0].Parent.SpanID() == spans[1].SpanContext.SpanID())
	// Output:
	// server grpckit.echo.v1.EchoService/Echo
	//   rpc.system.name=grpc
	//   rpc.method=grpckit.echo.v1.EchoService/Echo
	//   rpc.response.status_code=OK
	//   server.address=127.0.0.1
	// client grpckit.echo.v1.EchoService/Echo
	//   rpc.system.name=grpc
	//   rpc.method=grpckit.echo.v1.EchoService/Echo
	//   rpc.response.status_code=OK
	//   server.address=127.0.0.1
	// one trace: true
	// client span is the parent: true
}
