// Command quickstart serves an add service with grpckit's server builder and
// calls it through the client builder, on loopback.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/server"
)

// adder implements the service buf generated from addsvc.proto.
type adder struct {
	addsvcv1.UnimplementedAddServiceServer
}

func (adder) Sum(_ context.Context, req *addsvcv1.SumRequest) (*addsvcv1.SumResponse, error) {
	return &addsvcv1.SumResponse{V: req.GetA() + req.GetB()}, nil
}

func main() {
	// Server: build, register the generated service, serve.
	srv, err := server.New(grpckit.WithInsecure()) // plaintext on loopback: asked for by name
	if err != nil {
		log.Fatal(err)
	}
	addsvcv1.RegisterAddServiceServer(srv, adder{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)

	// Client: explicit transport security, generated client on top.
	conn, err := client.New("passthrough:///"+lis.Addr().String(), grpckit.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	add := addsvcv1.NewAddServiceClient(conn)
	res, err := add.Sum(context.Background(), &addsvcv1.SumRequest{A: 2, B: 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("2 + 3 =", res.GetV())

	// Graceful stop: NOT_SERVING, drain, finish in-flight calls.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
}
