// Package lbfake is a balancer.ClientConn that dials nothing, to drive a
// balancer through grpc's balancer API with any number of made-up
// addresses, and checks shared by the pickers' tests. The balancers' tests
// (through balancer/internal/lbtest) and the bench module's scale
// measurements use it.
package lbfake

import (
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	estats "google.golang.org/grpc/experimental/stats"
	"google.golang.org/grpc/resolver"
)

// FakeCC is a balancer.ClientConn that connects nothing: its SubConns become
// READY when Flush delivers their queued state changes. It lets a benchmark
// drive a balancer through grpc's balancer API with any number of fake
// addresses. It is not safe for concurrent use.
type FakeCC struct {
	balancer.ClientConn // nil: methods not defined here panic

	// State is the last state the balancer published.
	State balancer.State
	// Created and ShutDown count SubConns.
	Created, ShutDown int
	// Updates counts UpdateState calls.
	Updates int
	// Fail makes connections fail instead of becoming READY.
	Fail bool
	// Keep makes NewSubConn record the SubConns in SubConns.
	Keep bool
	// ReportShutdown makes a SubConn shut down report SHUTDOWN to its
	// listener at the next Flush, as grpc's do.
	ReportShutdown bool
	SubConns       []*FakeSubConn

	queue []func()
}

// NewSubConn implements balancer.ClientConn.
func (cc *FakeCC) NewSubConn(addrs []resolver.Address, opts balancer.NewSubConnOptions) (balancer.SubConn, error) {
	cc.Created++
	sc := &FakeSubConn{cc: cc, Addrs: addrs, listener: opts.StateListener}
	if cc.Keep {
		cc.SubConns = append(cc.SubConns, sc)
	}
	return sc, nil
}

// UpdateState implements balancer.ClientConn.
func (cc *FakeCC) UpdateState(s balancer.State) {
	cc.State = s
	cc.Updates++
}

// ResolveNow implements balancer.ClientConn.
func (cc *FakeCC) ResolveNow(resolver.ResolveNowOptions) {}

// MetricsRecorder implements balancer.ClientConn.
func (cc *FakeCC) MetricsRecorder() estats.MetricsRecorder { return noopRecorder{} }

// Flush delivers the queued state changes, including those they cause.
func (cc *FakeCC) Flush() {
	for len(cc.queue) > 0 {
		f := cc.queue[0]
		cc.queue[0] = nil
		cc.queue = cc.queue[1:]
		f()
	}
	cc.queue = nil
}

// FakeSubConn is a SubConn of FakeCC.
type FakeSubConn struct {
	balancer.SubConn // nil
	cc               *FakeCC
	Addrs            []resolver.Address
	listener         func(balancer.SubConnState)
	connected, down  bool
}

// Connect queues CONNECTING then READY (or TRANSIENT_FAILURE).
func (sc *FakeSubConn) Connect() {
	if sc.connected || sc.down {
		return
	}
	sc.connected = true
	final := connectivity.Ready
	if sc.cc.Fail {
		final = connectivity.TransientFailure
	}
	sc.cc.queue = append(sc.cc.queue, func() {
		if sc.down || sc.listener == nil {
			return
		}
		sc.listener(balancer.SubConnState{ConnectivityState: connectivity.Connecting})
		sc.listener(balancer.SubConnState{ConnectivityState: final})
	})
}

// SetState reports st to the balancer now.
func (sc *FakeSubConn) SetState(st connectivity.State) {
	if !sc.down && sc.listener != nil {
		sc.listener(balancer.SubConnState{ConnectivityState: st})
	}
}

// Down reports whether the balancer shut the SubConn down.
func (sc *FakeSubConn) Down() bool { return sc.down }

// Shutdown implements balancer.SubConn.
func (sc *FakeSubConn) Shutdown() {
	if sc.down {
		return
	}
	sc.down = true
	sc.cc.ShutDown++
	if l := sc.listener; l != nil && sc.cc.ReportShutdown {
		sc.cc.queue = append(sc.cc.queue, func() { l(balancer.SubConnState{ConnectivityState: connectivity.Shutdown}) })
	}
}

// UpdateAddresses implements balancer.SubConn.
func (sc *FakeSubConn) UpdateAddresses([]resolver.Address) {}

// RegisterHealthListener queues a READY health update.
func (sc *FakeSubConn) RegisterHealthListener(l func(balancer.SubConnState)) {
	sc.cc.queue = append(sc.cc.queue, func() {
		if !sc.down {
			l(balancer.SubConnState{ConnectivityState: connectivity.Ready})
		}
	})
}

type noopRecorder struct{ estats.MetricsRecorder }

func (noopRecorder) RecordInt64Count(*estats.Int64CountHandle, int64, ...string)             {}
func (noopRecorder) RecordFloat64Count(*estats.Float64CountHandle, float64, ...string)       {}
func (noopRecorder) RecordInt64Histo(*estats.Int64HistoHandle, int64, ...string)             {}
func (noopRecorder) RecordFloat64Histo(*estats.Float64HistoHandle, float64, ...string)       {}
func (noopRecorder) RecordInt64Gauge(*estats.Int64GaugeHandle, int64, ...string)             {}
func (noopRecorder) RecordInt64UpDownCount(*estats.Int64UpDownCountHandle, int64, ...string) {}
func (noopRecorder) RegisterAsyncReporter(estats.AsyncMetricReporter, ...estats.AsyncMetric) func() {
	return func() {}
}
