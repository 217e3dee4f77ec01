// Package p2c is a latency-aware "power of two choices" balancer, registered
// as [Name].
//
// For each call it draws two ready endpoints at random and picks the one
// with the lower score:
//
//	score = peak-EWMA latency × (in-flight calls + 1) / (weight × success rate²)
//
// Scores within 10% of each other count as equal and the pick is a coin
// toss between the two. An endpoint that becomes ready and was never picked
// takes the next call, whatever the draw: a new backend is reached (and
// measured) at once rather than when a draw first includes it, which under
// load cut the p99 from an etcd put of a new endpoint to its first call by
// about a millisecond (resolver/etcd's BenchmarkPutToFirstCall). Under light, one-at-a-time load an endpoint whose
// score is clearly worse (a slow first call, say) gets no calls until it is
// probed (see probeInterval), so a handful of serial calls may not reach
// every endpoint; under concurrent load the in-flight factor spreads them.
//
// The latency average is peak-sensitive: a slower call moves it up at once,
// to that call's latency or to twice the average, whichever is lower (a
// backend that turns 10× slower is caught within four calls, one outlier
// cannot make a fast backend look slow); faster calls pull it down with time
// constant "decay", and by at least 1/32 of the gap per call. Calls failing
// with Unavailable, Internal, Unknown, DataLoss or ResourceExhausted lower
// the success rate and leave the latency alone, so a backend that fails fast
// does not attract traffic. A call that ends with Canceled (the caller gave
// up) counts for nothing; one that ends with DeadlineExceeded counts as a
// latency observation, never as a failure. An endpoint not picked for
// "probeInterval" is picked once, so a backend that was slow is noticed when
// it recovers. Statistics are kept by address and survive picker rebuilds:
// an endpoint keeps its score when others come or go.
//
// Picking reads the clock once, draws two endpoints with one random number
// and compares their scores with atomic loads; Done reads the clock once and
// updates the endpoint with a few atomic operations. Neither allocates while
// fewer than 32 calls overlap on one endpoint slot.
//
// Weights from the resolver (see [github.com/grpckit/grpckit/resolver.Endpoint])
// divide the score, so an endpoint of weight 3 is chosen over one of weight 1
// until it holds about three times the in-flight calls. With equal latencies
// the shares follow the weights only roughly; use package wrr for exact
// shares.
//
// Endpoints that fail repeatedly are ejected (see the ejection settings), and
// when there are more endpoints than subsetSize, only a weighted random
// subset of subsetSize is connected, chosen per client by rendezvous hashing
// so that clients spread evenly and churn moves few SubConns; while a
// member's connection is failing, the next-ranked endpoint stands in for it.
// SubConns are created only for the subset, and an update costs one pass
// over the endpoints listed plus work proportional to what changed.
//
// Configuration, all fields optional (shown with their defaults):
//
//	{"loadBalancingConfig": [{"p2c": {
//	  "subsetSize": 100,
//	  "decay": "10s",
//	  "probeInterval": "1s",
//	  "pool": {"conns": 1, "maxConns": 1, "streams": 100},
//	  "ejection": {
//	    "disabled": false,
//	    "consecutiveFailures": 5,
//	    "failureRate": 0.5,
//	    "minRequests": 20,
//	    "interval": "10s",
//	    "baseEjectionTime": "30s",
//	    "maxEjectionTime": "300s",
//	    "maxEjectionPercent": 10
//	  }
//	}}]}
//
// "pool" gives each endpoint conns connections (SubConns), growing to
// maxConns when the least busy one carries three quarters of the streams
// its server allows; a call that finds every connection full while one is
// being added waits for it. "streams" is the limit assumed until the
// server's own is known: client.WithConnPool sets the pool and learns each
// server's SETTINGS_MAX_CONCURRENT_STREAMS. Scores, ejection and the
// statistics stay per endpoint.
//
// Ejections (WARN) and readmissions (INFO) are logged to slog.Default — gRPC
// builds a balancer from its name, so it cannot be handed a logger — with the
// keys grpc.lb_policy, grpc.target and peer.address.
//
// A hedged attempt (package interceptors/hedge) goes to an endpoint the
// call's earlier attempts did not use, while another usable one is ready;
// an attempt that lost to a hedge counts, when cancelled, as an observation
// of the time it ran, so that hedging does not hide a slow endpoint. Calls
// that are not hedged pay one context lookup for this.
//
// Select it with client.WithBalancer(p2c.Name). Its state is exported by
// the collector in package [github.com/grpckit/grpckit/balancer].
package p2c
