package etcd_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	"github.com/grpckit/grpckit/internal/etcdtest"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

// A server registers in etcd; a client finds it with an etcd:/// target.
func Example() {
	dir, _ := os.MkdirTemp("", "etcd-example-")
	defer os.RemoveAll(dir)
	registry, err := etcdtest.StartEmbedded(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer registry.Stop()
	cli, err := etcdtest.NewClient(registry.Endpoints()) // a *clientv3.Client
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
	srv, err := server.New(server.WithRegistrar(reg), grpckit.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	addsvcv1.RegisterAddServiceServer(srv, addservice.New(0))
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
	conn, err := client.New("etcd:///addsvc", client.WithInsecure(), grpckit.WithLogger(quiet),
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
