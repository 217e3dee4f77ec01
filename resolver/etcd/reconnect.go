package etcd

import (
	"google.golang.org/grpc/connectivity"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// reconnectNow makes the client's connection retry at once if it is
// waiting out gRPC's reconnect backoff, which grows to two minutes during a
// long etcd outage. Our own backoff (at most Backoff.Max) then bounds how
// long a resolver or registrar waits for a restarted etcd.
func reconnectNow(c *clientv3.Client) {
	if cc := c.ActiveConnection(); cc != nil && cc.GetState() == connectivity.TransientFailure {
		cc.ResetConnectBackoff()
	}
}
