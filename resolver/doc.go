// Package resolver is the core every grpckit service-discovery backend
// shares: the [Endpoint] a registry describes and how it travels to
// balancers, and a gRPC resolver [Builder] that turns a registry [Source]
// into endpoint lists with the guarantees users need from discovery.
//
// # Writing a backend
//
// A backend (resolver/etcd, resolver/consul, resolver/dnssrv) implements
// [Source]: its Watch method watches one service and reports to an
// [Updater] — complete sets with Replace (a Consul blocking query, a DNS
// answer), or changes with Apply (etcd watch events), entries it cannot
// decode with Invalid, and failures with ReportError. It retries on its own
// with [Backoff] and [Sleep], and returns when its context ends. It may read
// Updater.ResolveNow to re-poll when gRPC asks. [NewBuilder] does the rest:
//
//	src := &mySource{client: c}
//	b, err := resolver.NewBuilder("consul", src, resolver.WithRegisterer(reg))
//	conn, err := client.New("consul:///addsvc",
//		client.WithDialOptions(grpc.WithResolvers(b)))
//
// # What the core guarantees
//
//   - Build never waits for the registry. The source runs in a goroutine the
//     resolver owns; until its first answer, its errors reach gRPC (RPCs
//     fail fast with them, or wait with WaitForReady).
//   - After the first answer, errors never change the endpoint list: the
//     last known endpoints are kept while the registry is unreachable,
//     unless [WithMaxStaleness] says to give them up after a while. An empty
//     list is handed to gRPC only when the source reports that the service
//     has no instances.
//   - Every endpoint carries its [Endpoint] (weight, zone, version,
//     metadata) in the gRPC endpoint's attributes ([ToGRPC],
//     [FromAttributes]); addresses carry none, so a weight change does not
//     reconnect.
//   - Instances sharing an address are published once; updates that change
//     nothing push nothing; each change costs time proportional to what
//     changed (plus one copy of the list handed to gRPC).
//   - Close cancels the source and waits for its goroutine.
//   - With [WithRegisterer], resolver state is exported as Prometheus
//     metrics (endpoints, last sync time, staleness, updates, errors,
//     invalid entries); [Snapshot] returns every live resolver's endpoints,
//     last sync, staleness and error (server.WithAdmin serves it as JSON).
//
// Registrars (the server side) live beside their sources and implement
// server.Registrar.
package resolver
