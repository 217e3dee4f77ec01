package main

import (
	"encoding/json"
	"fmt"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/serviceconfig"

	"github.com/grpckit/grpckit/balancer/p2c"
)

// demoBalancer is grpckit's p2c balancer with timings sized for a demo whose
// phases last seconds: an ejected endpoint comes back on probation after 1 s
// (p2c's default: 30 s), latency and success averages follow a change
// within a second or two (default decay: 10 s), and an endpoint that lost
// every draw is probed every 250 ms (default: 1 s). Everything else, and
// the balancer itself, is p2c's: the client selects it by name with
// client.WithBalancer, and client.New adds its own field (the client's ID,
// for the admin page) to the config as it does for p2c.
//
// The client builder takes a balancer by name and writes its config itself,
// so a registered name is how a program passes p2c settings through it; with
// grpc.WithDefaultServiceConfig in client.WithDialOptions the config would
// replace the builder's and the admin page would lose the client's
// endpoints.
const demoBalancer = "addsvc_demo_p2c"

// demoBalancerConfig is merged into the config the client builder writes.
var demoBalancerConfig = map[string]any{
	"decay":         "2s",
	"probeInterval": "250ms",
	"ejection": map[string]any{
		"consecutiveFailures": 5,    // p2c's default
		"baseEjectionTime":    "1s", // then 2 s the second time
		"maxEjectionTime":     "2s",
	},
}

func init() { grpcbalancer.Register(demoBuilder{grpcbalancer.Get(p2c.Name)}) }

type demoBuilder struct{ grpcbalancer.Builder }

func (demoBuilder) Name() string { return demoBalancer }

// TakesClientID tells client.New to add its ID to the config, as it does
// for p2c.
func (demoBuilder) TakesClientID() {}

// ParseConfig implements balancer.ConfigParser: the client's fields plus
// demoBalancerConfig, parsed by p2c.
func (b demoBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := map[string]any{}
	if len(js) > 0 {
		if err := json.Unmarshal(js, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", demoBalancer, err)
		}
	}
	for k, v := range demoBalancerConfig {
		cfg[k] = v
	}
	merged, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return b.Builder.(grpcbalancer.ConfigParser).ParseConfig(merged)
}
