package consul_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/consultest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver/consul"
	"github.com/grpckit/grpckit/server"
)

func Example() {
	agent, err := consultest.New("127.0.0.1:0") // an in-process Consul agent
	if err != nil {
		panic(err)
	}
	defer agent.Close()
	cfg := api.DefaultConfig()
	cfg.Address = agent.Addr() // e.g. "127.0.0.1:8500"
	cli, err := api.NewClient(cfg)
	if err != nil {
		panic(err)
	}

	// Server: registers "echo" with a TTL check it keeps passing, once
	// serving; deregisters first on Shutdown.
	reg, err := consul.NewRegistrar(cli, "echo", consul.WithTags("v1"))
	if err != nil {
		panic(err)
	}
	srv, err := server.New(grpckit.WithInsecure(), server.WithRegistrar(reg), grpckit.WithAccessLog(false))
	if err != nil {
		panic(err)
	}
	echov1.RegisterEchoServiceServer(srv, &grpckittest.Backend{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { _ = srv.Close(); <-served }()

	// Client: watches the passing instances of "echo" tagged v1.
	b, err := consul.NewBuilder(cli)
	if err != nil {
		panic(err)
	}
	conn, err := client.New("consul:///echo?tag=v1", grpckit.WithInsecure(), grpckit.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{Message: "found through consul"},
		grpc.WaitForReady(true))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.GetMessage())
	// Output: found through consul
}
