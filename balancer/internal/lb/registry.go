package lb

import "sync"

// registry holds the live balancers for the metrics collector. It is
// machinery, not configuration: balancers add themselves in Build and leave
// in Close.
type registry struct {
	mu sync.Mutex
	bs map[*Balancer]struct{}
}

var live = registry{bs: make(map[*Balancer]struct{})}

func (r *registry) add(b *Balancer) {
	r.mu.Lock()
	r.bs[b] = struct{}{}
	r.mu.Unlock()
}

func (r *registry) remove(b *Balancer) {
	r.mu.Lock()
	delete(r.bs, b)
	r.mu.Unlock()
}

// Info describes a live balancer for the collector.
type Info struct {
	// ID tells apart balancers of the same name and target.
	ID      int64
	Name    string
	Target  string
	Ejected int64
	Subset  []*Endpoint
}

// Live returns the live balancers.
func Live() []Info {
	live.mu.Lock()
	defer live.mu.Unlock()
	out := make([]Info, 0, len(live.bs))
	for b := range live.bs {
		out = append(out, Info{ID: b.id, Name: b.name, Target: b.target, Ejected: b.g.Ejected(), Subset: b.Subset()})
	}
	return out
}
