package etcd_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

// adder is a minimal grpckit.addsvc.v1.AddService.
type adder struct {
	addsvcv1.UnimplementedAddServiceServer
}

func (adder) Sum(_ context.Context, req *addsvcv1.SumRequest) (*addsvcv1.SumResponse, error) {
	return &addsvcv1.SumResponse{V: req.GetA() + req.GetB()}, nil
}

// A server registers in etcd; a client finds it with an etcd:/// target.
func Example() {
	endpoints, stop := exampleEtcd() // your etcd's client URLs, e.g. http://127.0.0.1:2379
	defer stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()

	// Server: registers under /grpckit/services/addsvc/<id> once serving,
	// deregisters first on Shutdown.
	reg, err := etcd.NewRegistrar(cli, "addsvc", etcd.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(grpckit.WithInsecure(), server.WithRegistrar(reg), grpckit.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	addsvcv1.RegisterAddServiceServer(srv, adder{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Shutdown(context.Background())

	// Client: resolves etcd:///addsvc and keeps following it.
	b, err := etcd.NewBuilder(cli)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := client.New("etcd:///addsvc", grpckit.WithInsecure(), grpckit.WithLogger(quiet),
		client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	add := addsvcv1.NewAddServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// WaitForReady: the server registers right after Serve starts.
	res, err := add.Sum(ctx, &addsvcv1.SumRequest{A: 2, B: 3}, grpc.WaitForReady(true))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetV())
	// Output: 5
}
