package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// implementations are what the benchmarks compare: this package and
// go-grpc-middleware's providers/prometheus configured as it was used
// before, each on its own registry.
var implementations = []struct {
	name string
	new  func(testing.TB) interceptors
}{
	{"lean", func(tb testing.TB) interceptors { in, _ := lean(tb, prometheus.NewRegistry()); return in }},
	{"grpcprom", func(tb testing.TB) interceptors { in, _ := reference(tb, prometheus.NewRegistry()); return in }},
}

// BenchmarkUnary measures one unary call through the client and the server
// interceptor, with a no-op invoker and handler: the metrics' whole cost
// per call, both sides.
func BenchmarkUnary(b *testing.B) {
	for _, impl := range implementations {
		b.Run(impl.name, func(b *testing.B) {
			run := pass(impl.new(b))
			run()
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
		})
	}
}

// BenchmarkUnaryParallel is BenchmarkUnary with calls on every P, all on
// the same method, as a busy server sees them.
func BenchmarkUnaryParallel(b *testing.B) {
	for _, impl := range implementations {
		b.Run(impl.name, func(b *testing.B) {
			run := pass(impl.new(b))
			run()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					run()
				}
			})
		})
	}
}

// BenchmarkStream measures a bidi stream of one message each way through
// the server's stream interceptor.
func BenchmarkStream(b *testing.B) {
	info := &grpc.StreamServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/BidiStream", IsClientStream: true, IsServerStream: true}
	handler := func(_ any, ss grpc.ServerStream) error {
		_ = ss.RecvMsg(nil)
		return ss.SendMsg(nil)
	}
	ok := []error{nil}
	for _, impl := range implementations {
		b.Run(impl.name, func(b *testing.B) {
			in := impl.new(b)
			fake := &fakeServerStream{ctx: context.Background()}
			b.ReportAllocs()
			for b.Loop() {
				fake.recv, fake.send = ok, ok
				_ = in.ss(nil, fake, info, handler)
			}
		})
	}
}

var sinkTime time.Time

// BenchmarkTimeNow is the yardstick: one time.Now on this machine, in the
// same run.
func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		sinkTime = time.Now()
	}
}
