// Package consultest runs an in-process implementation of the Consul HTTP
// API endpoints grpckit uses, on a real loopback listener, for tests and
// examples. It follows Consul's documented semantics: the JSON shapes are
// encoded from consul/api's own structs, blocking queries block until the
// index moves past the one asked for or the wait ends, TTL checks turn
// critical when not updated in time, and DeregisterCriticalServiceAfter
// removes a service whose check stayed critical.
//
// Endpoints served:
//
//	GET /v1/health/service/<name>   passing, tag (repeatable), dc, near, ns, partition, index, wait
//	PUT /v1/agent/service/register
//	PUT /v1/agent/service/deregister/<id>
//	PUT /v1/agent/check/pass|warn|fail/<check-id>   note
//	PUT /v1/agent/check/update/<check-id>           {"Status","Output"}
//	GET /v1/agent/service/<id>
//
// Tests control it directly ([Server.SetCheckStatus], [Server.Forget],
// [Server.SetIndex], [Server.SetFailing], [Server.Stop], [Server.Start]), and
// [Proxy] sits in front of a fake or a real agent to take the endpoint down,
// inject errors and rewrite X-Consul-Index, so tests that need those controls
// also run against a real agent ([Agent] picks one from GRPCKIT_CONSUL_ADDR).
//
// A real agent outlives the tests and keeps its clients' idle keep-alive
// connections open, so every client the helpers build ([NewClient],
// [Agent.Client], [Server.Client], the [Proxy]'s own) closes its idle
// connections when the test ends, and [Start] fails a test that leaves a
// connection to the fake open: goleak would report its goroutines against
// a real agent.
package consultest
