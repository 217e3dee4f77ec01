package validate_test

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/validate"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func ExampleUnaryServerInterceptor() {
	v, err := validate.New()
	if err != nil {
		panic(err)
	}
	// Install it with grpc.ChainUnaryInterceptor; here it is called
	// directly. EchoRequest.message has the rule max_len = 1024.
	intercept := validate.UnaryServerInterceptor(v)
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}
	handler := func(_ context.Context, req any) (any, error) {
		return &echov1.EchoResponse{Message: req.(*echov1.EchoRequest).GetMessage()}, nil
	}

	_, err = intercept(context.Background(), &echov1.EchoRequest{Message: strings.Repeat("x", 2000)}, info, handler)
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
