// Package resolver holds what every grpckit resolver shares: the [Endpoint]
// a registry describes, and how it travels to balancers as gRPC attributes.
//
// The registry backends live in subpackages (etcd, consul, dnssrv), each
// with its registrar.
package resolver
