// Package wrr is a smooth weighted round-robin balancer, registered as
// [Name].
//
// Each ready endpoint receives a share of calls proportional to the weight
// its resolver attached (etcd value weight, Consul weights, DNS SRV weight;
// see [github.com/grpckit/grpckit/resolver.Endpoint]; unset means 1). The
// order is smooth, as in nginx's weighted round robin: with weights 5:1:1 the
// sequence is a a b a c a a, never five calls to one endpoint in a row. The
// schedule is computed once per picker, on its first pick, and picking is a
// single atomic increment.
//
// Ejection, subsetting, connection pools and the statistics exported as
// metrics are those of package p2c and take the same configuration ("decay"
// and "probeInterval" are accepted and unused):
//
//	{"loadBalancingConfig": [{"wrr": {
//	  "subsetSize": 100,
//	  "ejection": {"consecutiveFailures": 5, "maxEjectionPercent": 10}
//	}}]}
//
// A hedged attempt (package interceptors/hedge) goes to an endpoint the
// call's earlier attempts did not use, while another usable one is ready;
// an attempt that lost to a hedge counts, when cancelled, as an observation
// of the time it ran, so that hedging does not hide a slow endpoint. Calls
// that are not hedged pay one context lookup for this.
//
// Select it with client.WithBalancer(wrr.Name).
package wrr
