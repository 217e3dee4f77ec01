package lb

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/grpckit/grpckit/internal/streamlimit"
	gkresolver "github.com/grpckit/grpckit/resolver"
)

// Ready is an endpoint with a ready SubConn, as a picker sees it. Pickers
// call [Ready.Pick], which picks among the endpoint's connections when it
// has a Pool.
type Ready struct {
	EP   *Endpoint
	SC   balancer.SubConn
	Pool *Pool // nil unless the configuration pools connections
}

// PickerBuilder builds a picker over the ready endpoints of g. ready is the
// picker's own copy.
type PickerBuilder func(g *Group, ready []Ready) balancer.Picker

// Builder builds balancers that share this package's machinery and differ
// in their picker. It implements balancer.Builder and balancer.ConfigParser.
type Builder struct {
	// BalancerName is the registered name.
	BalancerName string
	// Picker builds the pickers.
	Picker PickerBuilder
	// Clock is the clock; nil means SystemClock.
	Clock Clock
}

// Name implements balancer.Builder.
func (bb *Builder) Name() string { return bb.BalancerName }

// ParseConfig implements balancer.ConfigParser.
func (bb *Builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	return ParseConfig(bb.BalancerName, js)
}

// TakesClientID marks grpckit's balancers for package client: their config
// takes the owning client's ID ("grpckitClient"), which Snapshot reports.
func (bb *Builder) TakesClientID() {}

// Build implements balancer.Builder.
func (bb *Builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &Balancer{
		id:     ids.Add(1),
		cc:     cc,
		name:   bb.BalancerName,
		target: opts.Target.String(),
		build:  bb.Picker,
		g:      NewGroup(DefaultConfig(), bb.Clock),
		seed:   maphash.MakeSeed(),
		index:  make(map[string]int32),
		state:  connectivity.Connecting,
	}
	b.g.name, b.g.target = b.name, b.target
	balancers.Add(b)
	return b
}

// ids numbers balancers for the metrics' channel label.
var ids atomic.Int64

// member is an endpoint that is or was in the subset; its fields are
// guarded by the balancer's mutex.
type member struct {
	ep    *Endpoint
	addr  resolver.Address
	conns []*pconn // its SubConns while in the subset: one, or a pool's
	pool  *Pool    // nil unless pooled
	// state sums up the conns' states: READY when one is, TRANSIENT_FAILURE
	// when all are, else CONNECTING or IDLE.
	state    connectivity.State
	inSubset bool
	want     bool
	readyIdx int
}

// pconn is one SubConn of a member.
type pconn struct {
	c     *Conn // the SubConn and its pool counts; nil once shut down
	raw   connectivity.State
	state connectivity.State // raw, but TRANSIENT_FAILURE is sticky until READY
}

// aggregate sums up the conns' states; sticky selects pconn.state over raw.
func (m *member) aggregate(sticky bool) connectivity.State {
	var ready, connecting, idle bool
	for _, pc := range m.conns {
		st := pc.raw
		if sticky {
			st = pc.state
		}
		switch st {
		case connectivity.Ready:
			ready = true
		case connectivity.Connecting:
			connecting = true
		case connectivity.Idle:
			idle = true
		}
	}
	switch {
	case ready:
		return connectivity.Ready
	case connecting:
		return connectivity.Connecting
	case idle:
		return connectivity.Idle
	}
	return connectivity.TransientFailure
}

// readySC returns a ready SubConn of m, nil when none is.
func (m *member) readySC() balancer.SubConn {
	for _, pc := range m.conns {
		if pc.state == connectivity.Ready {
			return pc.c.SC
		}
	}
	return nil
}

// Balancer diffs resolver updates against the endpoints it knows, keeps a
// weighted random subset of them connected, and publishes a picker over the
// ready ones. An update costs one pass over the endpoints listed (no hashing
// when their order is unchanged) plus work proportional to what changed; an
// endpoint becoming READY costs O(1), endpoints leaving the ready set one
// O(ready) pass per published picker.
type Balancer struct {
	// mu guards what follows but the atomics: gRPC calls the balancer from
	// one goroutine, but a pick may grow a pool.
	mu     sync.Mutex
	id     int64
	cc     balancer.ClientConn
	name   string
	target string
	build  PickerBuilder
	g      *Group
	seed   maphash.Seed

	// Known endpoints, by slot: dense arrays so that a scan of 100,000
	// endpoints stays in cache. mems[i] is nil until the endpoint first
	// joins the subset; it keeps its statistics while listed.
	index   map[string]int32
	addrs   []resolver.Address
	weights []uint32
	keys    []float64 // subset rank: lower is chosen first
	gens    []uint64
	mems    []*member
	// order[p] is the slot of the p-th endpoint of the last update: a
	// resolver that lists the same endpoints in the same order is matched
	// by one sequential pass, without hashing.
	order []int32

	subset  []*member
	ready   []*member // may hold stale entries until compact
	readyRS []Ready   // parallel to ready; pickers share prefixes of it
	nReady  int
	stale   bool // ready holds entries of members no longer ready
	gen     uint64
	counts  [connectivity.Shutdown + 1]int
	state   connectivity.State
	lastErr error
	closed  bool
	// published is set once a picker was sent.
	published bool

	view   atomic.Pointer[[]*Endpoint] // subset, for the collector
	client atomic.Int64                // the owning grpckit client's ID
}

// ErrNoEndpoints is the picker's error when the resolver lists none.
var errNoEndpoints = errors.New("resolver returned no endpoints")

// UpdateClientConnState implements balancer.Balancer.
func (b *Balancer) UpdateClientConnState(s balancer.ClientConnState) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	cfg, _ := s.BalancerConfig.(*Config)
	if cfg == nil {
		cfg = DefaultConfig()
	}
	old := b.g.cfg.Swap(cfg)
	b.client.Store(cfg.Client)
	changed := old.SubsetSize != cfg.SubsetSize
	dirty := false
	b.gen++
	seen, pos := 0, 0
	add := func(a resolver.Address, w uint32) {
		var (
			i  int32
			ok bool
		)
		if pos < len(b.order) {
			if i = b.order[pos]; int(i) < len(b.addrs) && b.addrs[i].Addr == a.Addr {
				ok = true
			}
		}
		if !ok {
			i, ok = b.index[a.Addr]
		}
		if !ok {
			i = int32(len(b.addrs))
		}
		if pos < len(b.order) {
			b.order[pos] = i
		} else {
			b.order = append(b.order, i)
		}
		pos++
		switch {
		case !ok:
			b.index[a.Addr] = i
			b.addrs = append(b.addrs, a)
			b.weights = append(b.weights, w)
			b.keys = append(b.keys, b.rank(a.Addr, w))
			b.gens = append(b.gens, b.gen)
			b.mems = append(b.mems, nil)
			changed = true
			seen++
			return
		case b.gens[i] == b.gen:
			return // listed twice
		case b.weights[i] != w:
			b.weights[i] = w
			b.keys[i] = b.rank(a.Addr, w)
			if m := b.mems[i]; m != nil {
				m.ep.weight.Store(w)
				dirty = dirty || m.readyIdx >= 0
			}
			changed = true
		}
		b.gens[i] = b.gen
		seen++
	}
	if eps := s.ResolverState.Endpoints; len(eps) > 0 {
		for _, ep := range eps {
			if len(ep.Addresses) == 0 {
				continue
			}
			add(ep.Addresses[0], gkresolver.FromGRPC(ep).EffectiveWeight())
		}
	} else {
		for _, a := range s.ResolverState.Addresses {
			add(a, 1)
		}
	}
	clear(b.order[pos:])
	b.order = b.order[:pos]
	if seen != len(b.addrs) {
		for i := 0; i < len(b.gens); {
			if b.gens[i] == b.gen {
				i++
				continue
			}
			if m := b.mems[i]; m != nil && m.inSubset {
				dirty = b.drop(m) || dirty
			}
			b.remove(i)
			changed = true
		}
	}
	if changed {
		dirty = b.resubset() || dirty
	}
	if len(b.addrs) == 0 {
		b.lastErr = errNoEndpoints
		b.publishError(connectivity.TransientFailure)
		return balancer.ErrBadResolverState
	}
	if dirty || !b.published || b.state == connectivity.TransientFailure && b.lastErr == errNoEndpoints {
		b.publish()
	}
	return nil
}

// remove forgets slot i, moving the last slot into it.
func (b *Balancer) remove(i int) {
	last := len(b.addrs) - 1
	delete(b.index, b.addrs[i].Addr)
	if i != last {
		b.index[b.addrs[last].Addr] = int32(i)
		b.addrs[i], b.weights[i], b.keys[i], b.gens[i], b.mems[i] = b.addrs[last], b.weights[last], b.keys[last], b.gens[last], b.mems[last]
	}
	b.addrs[last] = resolver.Address{}
	b.mems[last] = nil
	b.addrs, b.weights, b.keys, b.gens, b.mems = b.addrs[:last], b.weights[:last], b.keys[:last], b.gens[:last], b.mems[:last]
}

// rank is the weighted rendezvous rank: -ln(u)/w for a per-balancer hash u.
func (b *Balancer) rank(addr string, w uint32) float64 {
	h := maphash.String(b.seed, addr)
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -math.Log(u) / float64(w)
}

// resubset chooses the SubsetSize endpoints of lowest rank and connects the
// newcomers; it reports whether the ready set changed. Members whose
// connection failed stay (to reconnect with backoff) but do not count: the
// next-ranked endpoints stand in for them until they are READY again.
func (b *Balancer) resubset() bool {
	k := b.g.cfg.Load().SubsetSize
	var slots []int32
	if len(b.addrs) <= k {
		slots = make([]int32, len(b.addrs))
		for i := range slots {
			slots[i] = int32(i)
		}
	} else {
		slots = make([]int32, 0, k+b.counts[connectivity.TransientFailure])
		var failed []int32
		keys := b.keys
		for i, key := range keys {
			if m := b.mems[i]; m != nil && m.inSubset && m.state == connectivity.TransientFailure {
				failed = append(failed, int32(i))
				continue
			}
			if len(slots) < k {
				slots = append(slots, int32(i))
				if len(slots) == k {
					heapInit(slots, keys)
				}
			} else if key < keys[slots[0]] {
				slots[0] = int32(i)
				heapDown(slots, keys, 0)
			}
		}
		slots = append(slots, failed...)
	}
	chosen := make([]*member, len(slots))
	for j, i := range slots {
		m := b.mems[i]
		if m == nil {
			m = &member{ep: NewEndpoint(b.g, b.addrs[i].Addr, b.weights[i]), addr: b.addrs[i], readyIdx: -1}
			b.mems[i] = m
		}
		chosen[j] = m
	}
	for _, m := range chosen {
		m.want = true
	}
	dirty := false
	for _, m := range b.subset {
		if !m.want {
			dirty = b.drop(m) || dirty
		}
	}
	for _, m := range chosen {
		m.want = false
		if !m.inSubset {
			b.connect(m)
		}
	}
	b.subset = chosen
	b.g.members.Store(int64(len(chosen)))
	view := make([]*Endpoint, len(chosen))
	for i, m := range chosen {
		view[i] = m.ep
	}
	b.view.Store(&view)
	return dirty
}

// heapInit and heapDown keep a max-heap of slots on keys.
func heapInit(h []int32, keys []float64) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		heapDown(h, keys, i)
	}
}

func heapDown(h []int32, keys []float64, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		j := l
		if r := l + 1; r < len(h) && keys[h[r]] > keys[h[l]] {
			j = r
		}
		if keys[h[i]] >= keys[h[j]] {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// connect creates m's SubConns, as many as the configuration's
// Pool.Conns, and starts connecting.
func (b *Balancer) connect(m *member) {
	pool := b.g.cfg.Load().Pool
	m.pool = nil
	if pool.MaxConns > 1 {
		m.pool = &Pool{b: b, m: m}
	}
	for range pool.Conns {
		b.addConn(m)
	}
	if len(m.conns) == 0 {
		return
	}
	m.inSubset = true
	m.state = connectivity.Idle
	b.counts[connectivity.Idle]++
	m.ep.state.Store(int32(connectivity.Idle))
}

// addConn adds a SubConn to m and starts connecting it. A pooled member's
// SubConns learn their server's stream limit.
func (b *Balancer) addConn(m *member) bool {
	pc := &pconn{raw: connectivity.Idle, state: connectivity.Idle, c: &Conn{}}
	addr := m.addr
	if m.pool != nil {
		addr = streamlimit.WithLimit(addr, &pc.c.limit)
	}
	//lint:ignore SA1019 one address per SubConn, as the deprecation asks; there is no replacement yet
	sc, err := b.cc.NewSubConn([]resolver.Address{addr}, balancer.NewSubConnOptions{
		StateListener: func(s balancer.SubConnState) { b.subConnState(m, pc, s) },
	})
	if err != nil {
		return false
	}
	pc.c.SC = sc
	m.conns = append(m.conns, pc)
	if m.pool != nil {
		m.pool.total.Store(int32(len(m.conns)))
	}
	sc.Connect()
	return true
}

// grow adds a connection to p's member, called by a pick that found the
// pool's connections busy. It gives up rather than wait for the balancer:
// a later pick asks again. p.growing is set only once the connection is
// added, under b.mu: a pick that waits for it (Pool.pick) is then always
// woken by that connection's READY or TRANSIENT_FAILURE (subConnState,
// which needs b.mu too).
func (b *Balancer) grow(p *Pool) {
	if !b.mu.TryLock() {
		return
	}
	defer b.mu.Unlock()
	m := p.m
	if b.closed || m.pool != p || !m.inSubset || p.growing.Load() || len(m.conns) >= b.g.cfg.Load().Pool.MaxConns {
		return
	}
	if b.addConn(m) {
		p.growing.Store(true)
	}
}

// drop shuts m's SubConns down; it reports whether m was ready.
func (b *Balancer) drop(m *member) bool {
	if !m.inSubset {
		return false
	}
	wasReady := m.readyIdx >= 0
	if wasReady {
		b.unready(m)
	}
	b.counts[m.state]--
	for _, pc := range m.conns {
		pc.c.SC.Shutdown()
		pc.c = nil
	}
	m.conns = nil
	if m.pool != nil {
		m.pool.ready.Store(nil)
		m.pool.total.Store(0)
		m.pool = nil
	}
	m.inSubset = false
	m.ep.conns.Store(0)
	m.ep.state.Store(int32(connectivity.Shutdown))
	m.ep.release()
	return wasReady
}

// markReady appends m to the ready set. Pickers hold prefixes of readyRS,
// so appending never disturbs them and handing a new picker its endpoints
// costs O(1) (p2c's picker then looks once over them for endpoints never
// picked).
func (b *Balancer) markReady(m *member) {
	m.readyIdx = len(b.ready)
	b.ready = append(b.ready, m)
	b.readyRS = append(b.readyRS, Ready{EP: m.ep, SC: m.readySC(), Pool: m.pool})
	b.nReady++
}

// unready takes m out of the ready set; the arrays are compacted, in one
// pass, by the next publish.
func (b *Balancer) unready(m *member) {
	m.readyIdx = -1
	b.nReady--
	b.stale = true
}

// compact rebuilds the ready arrays without the members that left; an entry
// is current when its member's readyIdx points at it.
func (b *Balancer) compact() {
	if !b.stale {
		return
	}
	ready := make([]*member, 0, b.nReady)
	rs := make([]Ready, 0, b.nReady)
	for i, m := range b.ready {
		if m.readyIdx == i {
			m.readyIdx = len(ready)
			ready = append(ready, m)
			rs = append(rs, Ready{EP: m.ep, SC: m.readySC(), Pool: m.pool})
		}
	}
	b.ready, b.readyRS, b.stale = ready, rs, false
}

func (b *Balancer) subConnState(m *member, pc *pconn, s balancer.SubConnState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || pc.c == nil || s.ConnectivityState == connectivity.Shutdown {
		return
	}
	st := s.ConnectivityState
	if st == connectivity.Idle {
		pc.c.SC.Connect()
	}
	if st == connectivity.TransientFailure {
		b.lastErr = s.ConnectionError
	}
	pc.raw = st
	m.ep.state.Store(int32(m.aggregate(false)))
	// TRANSIENT_FAILURE is sticky until READY, as in round_robin.
	if pc.state == connectivity.TransientFailure && st != connectivity.Ready {
		return
	}
	wasReady := pc.state == connectivity.Ready
	pc.state = st
	if st == connectivity.Ready != wasReady {
		d := int32(1)
		if wasReady {
			d = -1
		}
		m.ep.conns.Add(d)
	}
	// wake: calls waiting for a pooled connection may go now.
	wake := false
	if p := m.pool; p != nil {
		if st == connectivity.Ready != wasReady {
			b.updatePool(m)
			wake = st == connectivity.Ready
		}
		if st == connectivity.Ready || st == connectivity.TransientFailure {
			wake = p.growing.Swap(false) || wake
		}
	}
	st = m.aggregate(true)
	prev := m.state
	b.counts[prev]--
	b.counts[st]++
	m.state = st
	switch {
	case st == connectivity.Ready && m.readyIdx < 0:
		b.markReady(m)
		b.publish()
	case st != connectivity.Ready && m.readyIdx >= 0:
		b.unready(m)
		b.publish()
	case st == prev:
		if wake && m.readyIdx >= 0 {
			b.publish()
		}
	default:
		if agg := b.aggregate(); agg != b.state && b.nReady == 0 {
			b.publishError(agg)
		}
	}
	// A member failing or recovering moves stand-ins in or out of the subset.
	if st != prev && (st == connectivity.TransientFailure || st == connectivity.Ready && prev == connectivity.TransientFailure) &&
		len(b.addrs) > b.g.cfg.Load().SubsetSize && b.resubset() {
		b.publish()
	}
}

// updatePool publishes m's ready connections to its pool.
func (b *Balancer) updatePool(m *member) {
	ready := make([]*Conn, 0, len(m.conns))
	for _, pc := range m.conns {
		if pc.state == connectivity.Ready {
			ready = append(ready, pc.c)
		}
	}
	m.pool.ready.Store(&ready)
}

func (b *Balancer) aggregate() connectivity.State {
	switch {
	case b.nReady > 0:
		return connectivity.Ready
	case b.counts[connectivity.Connecting] > 0 || b.counts[connectivity.Idle] > 0:
		return connectivity.Connecting
	default:
		return connectivity.TransientFailure
	}
}

// publish sends a new picker for the current ready set.
func (b *Balancer) publish() {
	b.compact()
	if b.nReady == 0 {
		b.publishError(b.aggregate())
		return
	}
	rs := b.readyRS[:len(b.readyRS):len(b.readyRS)]
	b.state = connectivity.Ready
	b.published = true
	b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: b.build(b.g, rs)})
}

func (b *Balancer) publishError(st connectivity.State) {
	b.state = st
	b.published = true
	var p balancer.Picker = errPicker{balancer.ErrNoSubConnAvailable}
	if st == connectivity.TransientFailure {
		err := b.lastErr
		if err == nil {
			err = errors.New("all connections failed")
		}
		// A plain error, not a status: gRPC fails fail-fast calls with
		// Unavailable and this text, and lets WaitForReady calls wait for a
		// ready endpoint (a status error would end them too).
		p = errPicker{fmt.Errorf("%s: %v", b.name, err)}
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: st, Picker: p})
}

// ResolverError implements balancer.Balancer.
func (b *Balancer) ResolverError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.addrs) > 0 {
		return
	}
	b.lastErr = err
	b.publishError(connectivity.TransientFailure)
}

// UpdateSubConnState implements balancer.Balancer; SubConns report through
// their StateListener instead.
func (b *Balancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

// ExitIdle implements balancer.Balancer.
func (b *Balancer) ExitIdle() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.subset {
		for _, pc := range m.conns {
			if pc.raw == connectivity.Idle {
				pc.c.SC.Connect()
			}
		}
	}
}

// Close implements balancer.Balancer.
func (b *Balancer) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	balancers.Remove(b)
	for _, m := range b.subset {
		for _, pc := range m.conns {
			pc.c.SC.Shutdown()
			pc.c = nil
		}
	}
	b.subset, b.ready, b.readyRS, b.mems, b.index = nil, nil, nil, nil, nil
}

// Group returns the balancer's group.
func (b *Balancer) Group() *Group { return b.g }

// Subset returns the endpoints that hold a SubConn.
func (b *Balancer) Subset() []*Endpoint {
	if v := b.view.Load(); v != nil {
		return *v
	}
	return nil
}

type errPicker struct{ err error }

func (p errPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{}, p.err
}
