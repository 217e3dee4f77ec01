package resolver_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
)

// staticSource is the smallest Source: a fixed registry of services. A
// real backend watches its registry in Watch and reports every change.
type staticSource map[string][]resolver.Endpoint

func (s staticSource) Watch(ctx context.Context, t resolver.Target, u resolver.Updater) error {
	instances := map[string]resolver.Endpoint{}
	for _, e := range s[t.Service] {
		instances[e.Addr] = e // keyed by an id unique within the source
	}
	u.Replace(instances) // the complete set; empty if the service is unknown
	<-ctx.Done()         // nothing changes until the resolver closes
	return nil
}

type echoServer struct {
	echov1.UnimplementedEchoServiceServer
}

func (echoServer) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// NewBuilder turns a Source into a gRPC resolver: a client dials
// "static:///echo" and reaches the endpoints the source lists for "echo".
func ExampleNewBuilder() {
	s := grpc.NewServer()
	echov1.RegisterEchoServiceServer(s, echoServer{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()

	src := staticSource{"echo": {{Addr: lis.Addr().String(), Weight: 2, Zone: "eu-1a"}}}
	b, err := resolver.NewBuilder("static", src)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := client.New("static:///echo", grpckit.WithInsecure(),
		client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{Message: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetMessage())

	// Every live grpckit resolver of the process, as admin pages show it.
	for _, st := range resolver.Snapshot() {
		if st.Scheme == "static" {
			fmt.Println(st.Service, "answered:", st.Answered, "endpoints:", len(st.Endpoints),
				"weight:", st.Endpoints[0].Weight, "zone:", st.Endpoints[0].Zone)
		}
	}
	// Output:
	// hello
	// echo answered: true endpoints: 1 weight: 2 zone: eu-1a
}
