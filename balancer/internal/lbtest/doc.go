// Package lbtest is what the balancers' tests and benchmarks add to
// grpckittest: loopback backends (grpckittest servers and echo backends)
// whose latency and failures a test controls, on a test clock if it asks
// (which the kit's Faults do not do); clients that reach them through
// grpc's manual resolver, so that a balancer gets resolver states exactly
// as the test gives them, with no resolver core in between; and FakeCC,
// which drives a balancer through grpc's balancer API without dialing
// anything.
package lbtest
