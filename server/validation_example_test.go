package server_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

func ExampleWithValidation() {
	// EchoRequest.message has the rule (buf.validate.field).string.max_len = 1024.
	srv, err := server.New(grpckit.WithInsecure(), server.WithValidation())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	echov1.RegisterEchoServiceServer(srv, &grpckittest.Backend{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)

	conn, err := client.New("passthrough:///"+lis.Addr().String(), grpckit.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	_, err = echov1.NewEchoServiceClient(conn).Echo(context.Background(),
		&echov1.EchoRequest{Message: strings.Repeat("x", 2000)})
	st := status.Convert(err)
	fmt.Println(st.Code(), st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fmt.Printf("%s: %s\n", fv.GetField(), fv.GetDescription())
			}
		}
	}
	// Output:
	// InvalidArgument invalid request
	// message: must be at most 1024 characters
}
