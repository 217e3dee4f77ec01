// Package lb is the machinery grpckit's balancers share: per-endpoint
// statistics keyed by address (in-flight calls, peak-EWMA latency, success
// rate), per-endpoint ejection, weighted subsetting with lazily created
// SubConns, the balancer that diffs resolver updates in time proportional to
// the change, and the registry of live balancers read by the metrics
// collector.
package lb
