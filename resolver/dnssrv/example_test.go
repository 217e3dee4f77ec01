package dnssrv_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/dnstest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver/dnssrv"
	"github.com/grpckit/grpckit/server"
)

func Example() {
	srv, err := server.New(grpckit.WithInsecure(), grpckit.WithAccessLog(false))
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

	// An in-process DNS server publishing the server as
	// _grpc._tcp.echo.example (what a headless Kubernetes service does).
	dns, err := dnstest.New()
	if err != nil {
		panic(err)
	}
	defer dns.Close()
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	p, _ := strconv.Atoi(port)
	dns.SetSRV("_grpc._tcp.echo.example", dnstest.SRV{Priority: 10, Weight: 5, Port: uint16(p), Target: "a.echo.example", TTL: 30})
	dns.SetHost("a.echo.example", "127.0.0.1")

	// Client: the authority names the DNS server; "dnssrv:///name" uses
	// /etc/resolv.conf's and needs no builder (registered in init).
	b, err := dnssrv.NewBuilder(dnssrv.WithRefresh(time.Second, time.Minute))
	if err != nil {
		panic(err)
	}
	conn, err := client.New("dnssrv://"+dns.Addr()+"/_grpc._tcp.echo.example", grpckit.WithInsecure(),
		grpckit.WithAccessLog(false), client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{Message: "found through DNS SRV"},
		grpc.WaitForReady(true))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.GetMessage())
	// Output: found through DNS SRV
}
