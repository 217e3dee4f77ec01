package balancer_test

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/client"
)

// Select p2c for a client, tune its ejection through the service config, and
// export the state of every grpckit balancer in the process.
func ExampleNewCollector() {
	reg := prometheus.NewRegistry()
	reg.MustRegister(balancer.NewCollector())

	conn, err := client.New("dns:///echo.example.internal:8443",
		grpckit.WithInsecure(),
		client.WithBalancer(p2c.Name),
		client.WithDialOptions(grpc.WithDefaultServiceConfig(
			`{"loadBalancingConfig":[{"p2c":{"ejection":{"consecutiveFailures":3,"baseEjectionTime":"10s"}}}]}`)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	fmt.Println("balancer:", p2c.Name)
	// Output: balancer: p2c
}
