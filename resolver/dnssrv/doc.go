// Package dnssrv resolves gRPC targets from DNS SRV records, the way
// Kubernetes headless services and classic DNS discovery publish backends:
//
//	dnssrv:///_grpc._tcp.addsvc.example           the system's DNS server
//	dnssrv://10.0.0.2:53/_grpc._tcp.addsvc.example  a named DNS server
//
// It runs on grpckit's resolver core (non-blocking Build, last known
// endpoints kept on errors, metrics). Each resolution asks for the SRV
// records over UDP, again over TCP when the answer is truncated, and
// resolves the targets to A and AAAA addresses (from the additional section
// when the server sent them). Of the records, only the lowest-priority group
// with at least one address is used, falling back to the next group when it
// has none (RFC 2782); SRV weights become Endpoint.Weight (0 counts as 1)
// for weighted balancers. It resolves again at the smallest TTL of the
// records used, bounded by [WithRefresh], when gRPC asks (ResolveNow, no
// more often than the minimum refresh), and with backoff after a failure.
//
// A name that does not exist (NXDOMAIN) or has no SRV records is a real
// state: the list becomes empty. A timeout or a server failure (SERVFAIL)
// keeps the last list.
//
// The package registers a builder with the defaults in init, so
// "dnssrv:///" targets work with grpc.NewClient and client.New directly;
// [NewBuilder] with grpc.WithResolvers takes other options.
package dnssrv
