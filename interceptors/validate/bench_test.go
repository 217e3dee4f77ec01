package validate_test

import (
	"context"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/interceptors/validate"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// BenchmarkValidate measures the unary server interceptor with the real
// protovalidate validator on a small message, beside the bare handler call
// and protovalidate alone in the same run.
func BenchmarkValidate(b *testing.B) {
	ctx := context.Background()
	handler := func(_ context.Context, req any) (any, error) { return req, nil }
	withRule := &echov1.EchoRequest{Message: "hello"}       // max_len rule
	noRule := &echov1.ServerStreamRequest{Message: "hello"} // no rules
	pv, err := protovalidate.New()
	if err != nil {
		b.Fatal(err)
	}
	i := validate.UnaryServerInterceptor(newValidator(b, validate.WithValidator(pv)))
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}

	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = handler(ctx, withRule)
		}
	})
	b.Run("protovalidate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := pv.Validate(withRule); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		req  any
	}{{"interceptor/rules", withRule}, {"interceptor/norules", noRule}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i(ctx, tc.req, info, handler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
