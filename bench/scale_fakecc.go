package main

import (
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// scaleCC is a balancer.ClientConn that connects nothing: a SubConn the
// balancer connects becomes CONNECTING then READY when flush delivers its
// queued state changes. It is balancer/internal/lbtest's FakeCC, which this
// module may not import (Go's internal rule admits only packages under
// balancer/). It is not safe for concurrent use.
type scaleCC struct {
	balancer.ClientConn // nil: methods not defined here panic

	state             balancer.State
	created, shutDown int
	queue             []func()
}

// NewSubConn implements balancer.ClientConn.
func (cc *scaleCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	cc.created++
	return &scaleSubConn{cc: cc, listener: opts.StateListener}, nil
}

// UpdateState implements balancer.ClientConn.
func (cc *scaleCC) UpdateState(s balancer.State) { cc.state = s }

// ResolveNow implements balancer.ClientConn.
func (cc *scaleCC) ResolveNow(resolver.ResolveNowOptions) {}

// MetricsRecorder implements balancer.ClientConn.
func (cc *scaleCC) MetricsRecorder() estats.MetricsRecorder { return scaleNoopRecorder{} }

// flush delivers the queued state changes, including those they cause.
func (cc *scaleCC) flush() {
	for len(cc.queue) > 0 {
		f := cc.queue[0]
		cc.queue[0] = nil
		cc.queue = cc.queue[1:]
		f()
	}
	cc.queue = nil
}

// scaleSubConn is a SubConn of scaleCC.
type scaleSubConn struct {
	balancer.SubConn // nil
	cc               *scaleCC
	listener         func(balancer.SubConnState)
	connected, down  bool
}

// Connect queues CONNECTING then READY.
func (sc *scaleSubConn) Connect() {
	if sc.connected || sc.down {
		return
	}
	sc.connected = true
	sc.cc.queue = append(sc.cc.queue, func() {
		if sc.down || sc.listener == nil {
			return
		}
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Ready})
	})
}

// Shutdown implements balancer.SubConn; like grpc's, it reports SHUTDOWN.
func (sc *scaleSubConn) Shutdown() {
	if sc.down {
		return
	}
	sc.down = true
	sc.cc.shutDown++
	if l := sc.listener; l != nil {
		sc.cc.queue = append(sc.cc.queue, func() { l(balancer.SubConnState{ConnectivityState: connectivity.Shutdown}) })
	}
}

// UpdateAddresses implements balancer.SubConn.
func (sc *scaleSubConn) UpdateAddresses([]resolver.Address) {}

// RegisterHealthListener queues a READY health update.
func (sc *scaleSubConn) RegisterHealthListener(l func(balancer.SubConnState)) {
	sc.cc.queue = append(sc.cc.queue, func() {
		if !sc.down {
			l(balancer.SubConnState{ConnectivityState: connectivity.Ready})
		}
	})
}

type scaleNoopRecorder struct{ estats.MetricsRecorder }

func (scaleNoopRecorder) RecordInt64Count(*estats.Int64CountHandle, int64, ...string)       {}
func (scaleNoopRecorder) RecordFloat64Count(*estats.Float64CountHandle, float64, ...string) {}
func (scaleNoopRecorder) RecordInt64Histo(*estats.Int64HistoHandle, int64, ...string)       {}
func (scaleNoopRecorder) RecordFloat64Histo(*estats.Float64HistoHandle, float64, ...string) {}
func (scaleNoopRecorder) RecordInt64Gauge(*estats.Int64GaugeHandle, int64, ...string)       {}
func (scaleNoopRecorder) RecordInt64UpDownCount(*estats.Int64UpDownCountHandle, int64, ...string) {
}
func (scaleNoopRecorder) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	return func() {}
}
