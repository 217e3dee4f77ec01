// Package consul resolves "consul:///service" targets from a Consul agent and
// registers servers with it.
//
// [NewBuilder] returns a gRPC resolver builder (on grpckit's resolver core:
// non-blocking Build, last known endpoints kept while Consul is unreachable,
// an empty list only when the service really has no healthy instance,
// metrics) that watches /v1/health/service/<name> with blocking queries. It
// follows the index rules of Consul's blocking-query documentation: the
// index starts over at 0 when it goes backwards, is never 0 after the first
// read (1 is used instead), a loop whose index does not move is
// rate-limited ([WithMinInterval]), and failed queries are retried with
// exponential backoff and jitter. Each instance's weight comes from its
// Service.Weights (Passing, or Warning while a check warns and
// WithPassingOnly(false)); its meta becomes endpoint metadata ("zone" and
// "version" also fill Endpoint.Zone and Version) and its tags
// [MetaTags]. The builder needs a client, so it is not registered by name:
// pass it with grpc.WithResolvers.
//
//	b, err := consul.NewBuilder(apiClient)
//	conn, err := client.New("consul:///addsvc?tag=blue", grpckit.WithInsecure(),
//		client.WithDialOptions(grpc.WithResolvers(b)))
//
// [NewRegistrar] announces a server with a TTL check that it keeps passing
// (Consul does not need to reach the server), DeregisterCriticalServiceAfter
// set so that a server that died is removed, and registers the service again
// whenever the agent lost it (agent restarted, service removed). Pass it to
// server.WithRegistrar.
//
// Both make their requests with the api.Client they are given and open no
// connection of their own. Closing the gRPC client, or Deregister, cancels
// their request in flight, which closes its connection; the connections
// they leave idle are the client's: close them (CloseIdleConnections on its
// api.Config.Transport) when done with it, as the agent keeps them open.
package consul
