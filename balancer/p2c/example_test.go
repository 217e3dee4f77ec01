package p2c_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"
	grpcresolver "google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/client"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// backend answers Echo with its own name, after delay.
type backend struct {
	echov1.UnimplementedEchoServiceServer
	name  string
	delay time.Duration
}

func (b backend) Echo(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	select {
	case <-time.After(b.delay):
		return &echov1.EchoResponse{Message: b.name}, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// p2c, the client's default balancer, keeps calls away from a slow
// backend: a backend that comes up gets a call at once, and from then on
// p2c compares the latencies it measured and sends nearly every call to
// the fast one.
func Example() {
	r := manual.NewBuilderWithScheme("example")
	var addrs []grpcresolver.Address
	for _, b := range []backend{{name: "fast"}, {name: "slow", delay: 100 * time.Millisecond}} {
		s := grpc.NewServer()
		echov1.RegisterEchoServiceServer(s, b)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go s.Serve(lis)
		defer s.Stop()
		addrs = append(addrs, grpcresolver.Address{Addr: lis.Addr().String()})
	}
	r.InitialState(grpcresolver.State{Addresses: addrs})

	conn, err := client.New(r.Scheme()+":///echo", grpckit.WithInsecure(),
		client.WithBalancer(p2c.Name), // the default, named for clarity
		client.WithDialOptions(grpc.WithResolvers(r)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	echo := echov1.NewEchoServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	counts := map[string]int{}
	for range 50 {
		res, err := echo.Echo(ctx, &echov1.EchoRequest{})
		if err != nil {
			log.Fatal(err)
		}
		counts[res.GetMessage()]++
	}
	fmt.Println("calls:", counts["fast"]+counts["slow"])
	fmt.Println("fast backend answered at least 45:", counts["fast"] >= 45)
	// Output:
	// calls: 50
	// fast backend answered at least 45: true
}
