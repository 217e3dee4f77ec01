// Package balancer exports the state of grpckit's load balancers (packages
// p2c and wrr) as Prometheus metrics.
//
// gRPC builds a balancer from its registered name, so a balancer cannot be
// handed a prometheus.Registerer. Instead every live grpckit balancer in the
// process is reported by the collector that [NewCollector] returns; register
// it once on the registry you expose:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(balancer.NewCollector())
//
// Metrics, per endpoint (labels balancer, target, channel, endpoint; channel
// tells apart two clients of the same target):
//
//	grpckit_balancer_endpoint_in_flight         calls picked and not done
//	grpckit_balancer_endpoint_latency_seconds   peak-EWMA latency
//	grpckit_balancer_endpoint_success_rate      success-rate average, 0..1
//	grpckit_balancer_endpoint_score             p2c's score (lower is preferred)
//	grpckit_balancer_endpoint_weight            weight from the resolver
//	grpckit_balancer_endpoint_ready             1 when the connection is READY
//	grpckit_balancer_endpoint_ejected           1 while ejected
//	grpckit_balancer_endpoint_ejections_total   times ejected
//	grpckit_balancer_endpoint_calls_total       calls ended (the caller's cancellations excluded)
//	grpckit_balancer_endpoint_failures_total    of which failed
//
// Only the endpoints a balancer is connected to (its subset) are reported.
// [Snapshot] returns the same state as values, for an admin page.
package balancer
