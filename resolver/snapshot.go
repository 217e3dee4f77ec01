package resolver

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/grpckit/grpckit/internal/live"
)

// State is a live grpckit resolver as [Snapshot] sees it.
type State struct {
	// Scheme and Service name the target ("etcd", "addsvc").
	Scheme  string `json:"scheme"`
	Service string `json:"service"`
	// Answered is set once the registry answered and a state was handed
	// to gRPC.
	Answered bool `json:"answered"`
	// Endpoints are the endpoints handed to gRPC now.
	Endpoints []Endpoint `json:"endpoints"`
	// LastSync is when the registry was last known to be in sync (zero,
	// and left out of the JSON, before its first answer).
	LastSync time.Time `json:"lastSync,omitzero"`
	// Staleness is how long the registry has been unreachable since
	// LastSync; 0 while it is in sync, and before its first answer (Error
	// then says why there is none).
	Staleness time.Duration `json:"stalenessNs"`
	// Error is the registry's latest error while it is unreachable.
	Error string `json:"error,omitempty"`
	// GaveUp is set while the endpoints are withdrawn by the staleness
	// policy ([WithMaxStaleness]).
	GaveUp bool `json:"gaveUp,omitempty"`
}

// Snapshot returns the state of every live grpckit resolver in the
// process (etcd, Consul, DNS SRV and any other [Source]), ordered by scheme
// and service, for admin pages and debugging; server.WithAdmin serves it at
// /debug/grpckit/resolvers. The values are copies. A resolver is listed
// from gRPC's Build to its Close (a ClientConn closes its resolver).
//
// Snapshot waits for each resolver's lock, which is held while the
// resolver hands a state to gRPC: do not call it from a balancer or
// resolver callback.
func Snapshot() []State {
	rs := resolvers.All(nil)
	out := make([]State, 0, len(rs))
	for _, r := range rs {
		if st, ok := r.state(); ok {
			out = append(out, st)
		}
	}
	slices.SortStableFunc(out, func(a, b State) int {
		return cmp.Or(cmp.Compare(a.Scheme, b.Scheme), cmp.Compare(a.Service, b.Service))
	})
	return out
}

// state returns r's State, false once r is closed.
func (r *ccResolver) state() (State, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return State{}, false
	}
	st := State{Scheme: r.b.scheme, Service: r.target.Service, Answered: r.answered, LastSync: r.lastSync, GaveUp: r.gaveUp,
		Endpoints: []Endpoint{}}
	st.Staleness = r.staleness()
	if !r.errSince.IsZero() {
		if r.lastErr != nil {
			st.Error = r.lastErr.Error()
		}
	}
	if r.answered && !r.gaveUp {
		for _, e := range r.set.list {
			ep := FromGRPC(e)
			ep.Metadata = maps.Clone(ep.Metadata) // shared with gRPC's attributes
			st.Endpoints = append(st.Endpoints, ep)
		}
	}
	return st, true
}

// resolvers holds the live resolvers for Snapshot and the metrics.
var resolvers live.Set[*ccResolver]

// resolversOf returns the live resolvers whose builder exports m.
func resolversOf(m *metrics) []*ccResolver {
	return resolvers.All(func(r *ccResolver) bool { return r.b.m == m })
}
