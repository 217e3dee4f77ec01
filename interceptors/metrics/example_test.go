package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/metrics"
)

// A server's interceptors record every call on the registry, which
// Handler serves to Prometheus.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewServer(reg, metrics.WithConstLabels(prometheus.Labels{"app": "demo"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Install them on a gRPC server...
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()),
	}
	_ = opts

	// ...which then calls them for each request, like this.
	notFound := func(context.Context, any) (any, error) { return nil, status.Error(codes.NotFound, "no such greeting") }
	_, _ = m.UnaryServerInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/demo.v1.Greeter/Hello"}, notFound)

	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "grpc_server_handled_total{") || strings.HasPrefix(line, "grpc_server_handling_seconds_count{") {
			fmt.Println(line)
		}
	}
	// Output:
	// grpc_server_handled_total{app="demo",grpc_code="NotFound",grpc_method="Hello",grpc_service="demo.v1.Greeter",grpc_type="unary"} 1
	// grpc_server_handling_seconds_count{app="demo",grpc_method="Hello",grpc_service="demo.v1.Greeter",grpc_type="unary"} 1
}
