package client

import (
	"context"
	"net/url"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	grpcbalancer "google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/hedge"
	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/interceptors/retry"
	"github.com/grpckit/grpckit/internal/adminstate"
	"github.com/grpckit/grpckit/resolver"
)

// adminParts are what a Conn shows on the admin page besides its
// connection: the components the builder installed.
type adminParts struct {
	id       int64
	source   *adminstate.ClientSource
	balancer string
	activity *adminstate.Activity
	breakers *breaker.Breakers // nil: off, or the adaptive throttle
	retrier  *retry.Retrier
	hedger   *hedge.Hedger
	limiter  *ratelimit.Limiter
}

// ownsBalancerState reports whether the balancer named name reports its
// state with the owning client's ID (grpckit's own balancers do: their
// config takes it).
func ownsBalancerState(name string) bool {
	_, ok := grpcbalancer.Get(name).(interface{ TakesClientID() })
	return ok
}

// adminState returns the connection's state for the admin page.
func (c *Conn) adminState() adminstate.Client {
	p := &c.admin
	st := adminstate.Client{ID: p.id, Target: c.Target(), State: c.GetState().String(), Balancer: p.balancer,
		Calls: p.activity.Calls(), Breakers: []breaker.Status{}, Limiters: []adminstate.Limiter{},
		Endpoints: []balancer.EndpointState{}}
	if p.breakers != nil {
		st.Breakers = p.breakers.Snapshot()
	}
	if p.retrier != nil {
		b := p.retrier.Budget()
		st.Retry = &b
	}
	if p.hedger != nil {
		h := p.hedger.Snapshot()
		st.Hedging = &h
	}
	if l := p.limiter; l != nil {
		rate, conc := l.Rejected()
		st.Limiters = append(st.Limiters, adminstate.Limiter{Name: "WithRateLimit", RejectedRate: rate,
			RejectedConcurrency: conc, InFlight: l.InFlight(), Keys: l.Keys()})
	}
	for _, b := range balancer.Snapshot() {
		if b.Client == p.id {
			st.Endpoints = append(st.Endpoints, b.Endpoints...)
			st.Ejected += b.Ejected
		}
	}
	if u, err := url.Parse(c.Target()); err == nil && u.Scheme != "" {
		service := strings.TrimPrefix(u.Path, "/")
		for _, r := range resolver.Snapshot() {
			if r.Scheme == u.Scheme && r.Service == service {
				st.Resolver = &r
				break
			}
		}
	}
	return st
}

// activityUnary counts the connection's unary calls and keeps its recent
// failures for the admin page.
func activityUnary(a *adminstate.Activity) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		a.Begin()
		err := invoker(ctx, method, req, reply, cc, opts...)
		a.End(method, err, nil)
		return err
	}
}

// activityStream does the same for streams, which end when gRPC says so.
func activityStream(a *adminstate.Activity) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		a.Begin()
		var ended atomic.Bool
		end := func(err error) {
			if ended.CompareAndSwap(false, true) {
				a.End(method, err, nil)
			}
		}
		cs, err := streamer(ctx, desc, cc, method, append(opts, grpc.OnFinish(end))...)
		if err != nil {
			end(err)
		}
		return cs, err
	}
}

// adminSource returns the connection's entry among the process's live
// clients.
func (c *Conn) adminSource() *adminstate.ClientSource {
	src := &adminstate.ClientSource{State: c.adminState}
	if c.registry != nil {
		src.Registry = c.registry
	}
	return src
}
