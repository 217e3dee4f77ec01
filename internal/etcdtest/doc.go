// Package etcdtest runs etcd for tests, benchmarks and the demo: an embedded
// single-member etcd (go.etcd.io/etcd/server/v3/embed) on 127.0.0.1 ports in
// a temporary directory, which can be stopped and started again on the same
// ports and data, or an external etcd named by GRPCKIT_ETCD_ENDPOINTS.
//
// With GRPCKIT_ETCD_ENDPOINTS set (comma-separated client URLs, e.g.
// "http://127.0.0.1:2379"), [Start] uses that etcd, gives each test its own
// key prefix, and deletes the prefix when the test ends; tests that must
// stop etcd call [Etcd.RequireEmbedded] and are skipped.
package etcdtest
