package wrr_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"
	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/balancer/wrr"
	"github.com/grpckit/grpckit/client"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
)

// backend answers Echo with its own name.
type backend struct {
	echov1.UnimplementedEchoServiceServer
	name string
}

func (b backend) Echo(context.Context, *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: b.name}, nil
}

// Three backends of weights 3, 2 and 1 share the calls 3:2:1. Here a
// manual resolver lists them; grpckit's resolvers attach the weights their
// registry holds (etcd value, Consul weights, DNS SRV weight) the same way.
func Example() {
	var endpoints []grpcresolver.Endpoint
	for _, b := range []struct {
		name   string
		weight uint32
	}{{"a", 3}, {"b", 2}, {"c", 1}} {
		s := grpc.NewServer()
		echov1.RegisterEchoServiceServer(s, backend{name: b.name})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go s.Serve(lis)
		defer s.Stop()
		endpoints = append(endpoints, resolver.ToGRPC(resolver.Endpoint{Addr: lis.Addr().String(), Weight: b.weight}))
	}
	r := manual.NewBuilderWithScheme("example")
	r.InitialState(grpcresolver.State{Endpoints: endpoints})

	conn, err := client.New(r.Scheme()+":///echo", grpckit.WithInsecure(),
		client.WithBalancer(wrr.Name),
		client.WithDialOptions(grpc.WithResolvers(r)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	echo := echov1.NewEchoServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Connections come up one by one: once every backend has answered, all
	// three are in the rotation.
	for answered := map[string]bool{}; len(answered) < len(endpoints); {
		res, err := echo.Echo(ctx, &echov1.EchoRequest{})
		if err != nil {
			log.Fatal(err)
		}
		answered[res.GetMessage()] = true
	}

	counts := map[string]int{}
	for range 60 {
		res, err := echo.Echo(ctx, &echov1.EchoRequest{})
		if err != nil {
			log.Fatal(err)
		}
		counts[res.GetMessage()]++
	}
	fmt.Println(counts)
	// Output: map[a:30 b:20 c:10]
}
