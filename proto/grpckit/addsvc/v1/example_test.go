package addsvcv1_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

// adder implements grpckit.addsvc.v1.AddService.
type adder struct {
	addsvcv1.UnimplementedAddServiceServer
}

func (adder) Sum(_ context.Context, req *addsvcv1.SumRequest) (*addsvcv1.SumResponse, error) {
	return &addsvcv1.SumResponse{V: req.GetA() + req.GetB()}, nil
}

func (adder) Concat(_ context.Context, req *addsvcv1.ConcatRequest) (*addsvcv1.ConcatResponse, error) {
	return &addsvcv1.ConcatResponse{V: req.GetA() + req.GetB()}, nil
}

// Serve the generated service and call it through the generated client.
func Example() {
	s := grpc.NewServer()
	addsvcv1.RegisterAddServiceServer(s, adder{})
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
	add := addsvcv1.NewAddServiceClient(conn)
	ctx := context.Background()

	sum, err := add.Sum(ctx, &addsvcv1.SumRequest{A: 2, B: 3})
	if err != nil {
		log.Fatal(err)
	}
	concat, err := add.Concat(ctx, &addsvcv1.ConcatRequest{A: "grpc", B: "kit"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum.GetV(), concat.GetV())
	// Output: 5 grpckit
}
