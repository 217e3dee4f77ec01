package lb

import "github.com/grpckit/grpckit/internal/live"

// balancers holds the live balancers for the metrics collector and
// Snapshot: they add themselves in Build and leave in Close.
var balancers live.Set[*Balancer]

// Info describes a live balancer for the collector.
type Info struct {
	// ID tells apart balancers of the same name and target.
	ID      int64
	Client  int64 // the owning grpckit client's ID, 0 for others
	Name    string
	Target  string
	Ejected int64
	Subset  []*Endpoint
}

// Live returns the live balancers.
func Live() []Info {
	bs := balancers.All(nil)
	out := make([]Info, 0, len(bs))
	for _, b := range bs {
		out = append(out, Info{ID: b.id, Client: b.client.Load(), Name: b.name, Target: b.target, Ejected: b.g.Ejected(), Subset: b.Subset()})
	}
	return out
}
