// Package lbtest starts loopback backends whose latency and failures a test
// controls, and clients that reach them through grpc's manual resolver, for
// the balancers' tests and benchmarks; its FakeCC drives a balancer through
// grpc's balancer API without dialing anything.
package lbtest
