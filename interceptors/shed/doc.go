// Package shed rejects calls early when a server is overloaded, so that
// goodput stays near capacity when offered load is several times what the
// server can serve, instead of collapsing into queues of calls that time
// out after the server has spent work on them.
//
// It follows the BBR idea (as in Kratos' and Sentinel's adaptive limiters):
// over a sliding window of buckets the shedder measures the highest number
// of calls completed per bucket (the throughput the server showed it can
// sustain) and the lowest mean latency of a bucket (the latency without
// queueing). Their product is the number of calls the server can have in
// flight without queueing (Little's law); a call that would push the
// number in flight above it is rejected with codes.ResourceExhausted and
// the message [Message]. The estimate is refreshed once per bucket, not per
// call. Until the window has data, nothing is shed.
//
// In-flight calls against measured throughput and latency are the signal by
// default. A CPU signal can gate it ([WithCPU]): then calls are shed only
// while CPU usage is above a threshold, or within a second of the last
// rejection (so that shedding does not flap); [NewCPUSampler] reads usage
// from cgroups (v2 cpu.stat and cpu.max) or, outside a cgroup, from the Go
// runtime's own CPU accounting.
//
// An admitted call costs two clock reads (start and end: the latency must
// be measured) and a few atomic operations; there are no locks.
package shed
