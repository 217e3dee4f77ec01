// Package etcd resolves and registers gRPC services in etcd v3.
//
// # Key layout
//
// Each server instance owns one key,
//
//	/grpckit/services/<service>/<instance-id>
//
// (the prefix is [DefaultPrefix], changed with [WithPrefix]), whose value is
// the instance's endpoint as JSON:
//
//	{"address":"10.0.0.7:8080","weight":10,"zone":"eu-1a","version":"1.4.2","metadata":{"k":"v"}}
//
// Only "address" is required. The key is attached to a lease that the
// [Registrar] keeps alive, so it disappears within the lease TTL when its
// server dies.
//
// # Resolving
//
// [NewBuilder] returns a resolver.Builder (grpckit's core: non-blocking
// Build, last-known endpoints kept through etcd outages, metrics) for
// targets "etcd:///<service>":
//
//	b, err := etcd.NewBuilder(cli)
//	conn, err := client.New("etcd:///addsvc",
//		client.WithDialOptions(grpc.WithResolvers(b)))
//
// A resolver reads the service's keys once, then watches them from the next
// revision (with clientv3.WithRequireLeader) and applies each event as a
// change. After a compaction it reloads; after any other failure it reloads
// after a backoff with jitter. A value that does not decode is logged,
// counted (grpckit_resolver_invalid_entries_total) and skipped; it never
// removes an endpoint that decoded before. Periodic watch progress requests
// tell the resolver whether etcd still answers; while it does not, the
// endpoints are kept and the staleness metric grows.
//
// The builder is not registered globally, as it needs a client; register
// it yourself with google.golang.org/grpc/resolver.Register to use the
// scheme without grpc.WithResolvers.
//
// # Registering
//
// [NewRegistrar] returns a server.Registrar: pass it to server.WithRegistrar
// and the server registers once it is serving and deregisters first on
// Shutdown. The registration heals itself: a lost lease is granted again
// and the key put again, with backoff, for as long as the server lives; a
// key deleted by hand is put back at once. Deregister revokes the lease.
package etcd
