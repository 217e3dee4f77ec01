package lb

import (
	"math"
	"sync/atomic"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/internal/pickhint"
	"github.com/grpckit/grpckit/internal/streamlimit"
)

// Conn is one of an endpoint's connections (SubConns) when the endpoint
// has a pool: the calls it carries now and the stream limit its server
// advertised.
type Conn struct {
	SC       balancer.SubConn
	inflight atomic.Int64
	limit    streamlimit.Limit
}

// InFlight returns the calls on the connection now.
func (c *Conn) InFlight() int64 { return c.inflight.Load() }

// Pool is an endpoint's connections when the configuration asks for more
// than one (Config.Pool). Calls go to the ready connection carrying the
// fewest; when that one nears its server's stream limit and the pool may
// grow, the pick asks the balancer for one more connection. The endpoint's
// statistics (and so p2c's and wrr's scores) stay per endpoint, whatever
// the number of connections.
type Pool struct {
	b       *Balancer
	m       *member
	ready   atomic.Pointer[[]*Conn]
	total   atomic.Int32 // connections, ready or not
	growing atomic.Bool  // a connection added to grow the pool is connecting (written under Balancer.mu)
}

// Ready returns the ready connections.
func (p *Pool) Ready() []*Conn {
	if r := p.ready.Load(); r != nil {
		return *r
	}
	return nil
}

// pick returns the ready connection carrying the fewest calls and counts
// the call on it. When that one nears its server's stream limit, pick asks
// the balancer for one more connection, if the pool may grow; when it is at
// the limit and a new connection is on its way, pick returns wait: the call
// waits for the next picker (the new connection's) rather than queue behind
// a busy one. It returns nil and false when no connection is ready.
func (p *Pool) pick() (c *Conn, wait bool) {
	if p == nil {
		return nil, false
	}
	conns := p.Ready()
	if len(conns) == 0 {
		return nil, false
	}
	c = conns[0]
	n := c.inflight.Load()
	for _, o := range conns[1:] {
		if m := o.inflight.Load(); m < n {
			c, n = o, m
		}
	}
	if limit := int64(c.limit.Get()); limit != math.MaxUint32 {
		cfg := p.b.g.cfg.Load()
		if limit == 0 {
			limit = int64(cfg.Pool.Streams)
		}
		if n+1 >= limit-limit/4 && int(p.total.Load()) < cfg.Pool.MaxConns && !p.growing.Load() {
			p.b.grow(p)
		}
		if n >= limit && p.growing.Load() {
			return nil, true
		}
	}
	c.inflight.Add(1)
	return c, false
}

// Pick picks r's endpoint for a call at now, as a picker returns it: on
// its least busy pool connection if it has a pool, with the pick recorded in
// h when the attempt carries a hint (package hedge's). It returns
// balancer.ErrNoSubConnAvailable when the call should wait for a connection
// the endpoint's pool is adding.
func (r *Ready) Pick(now int64, h *pickhint.Hint) (balancer.PickResult, error) {
	c, wait := r.Pool.pick()
	if wait {
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	sc := r.SC
	if c != nil {
		sc = c.SC
	}
	done := r.EP.Pick(now, c)
	if h != nil {
		h.Record(&r.EP.Addr)
		done = hinted(h, done)
	}
	return balancer.PickResult{SubConn: sc, Done: done}, nil
}
