package balancer

import (
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/grpckit/grpckit/balancer/internal/lb"
)

// State is a live grpckit balancer as [Snapshot] sees it.
type State struct {
	// Name is the balancer's registered name ("p2c", "wrr").
	Name string `json:"name"`
	// Target is the client's dial target.
	Target string `json:"target"`
	// Channel tells apart two clients of the same target.
	Channel int64 `json:"channel"`
	// Client is the ID of the grpckit client (client.New) that owns the
	// channel, as the admin page lists clients; 0 for a channel built
	// otherwise.
	Client int64 `json:"client,omitempty"`
	// Ejected is how many endpoints are ejected now.
	Ejected int64 `json:"ejected"`
	// Endpoints are the endpoints the balancer is connected to (its subset).
	Endpoints []EndpointState `json:"endpoints"`
}

// EndpointState is one endpoint of a [State].
type EndpointState struct {
	// Addr is the endpoint's address.
	Addr string `json:"address"`
	// Weight is the weight from the resolver.
	Weight uint32 `json:"weight"`
	// State is the connection's state; StateName spells it.
	State     connectivity.State `json:"-"`
	StateName string             `json:"state"`
	// Conns counts the endpoint's ready connections: one, or more with a
	// pool (client.WithConnPool).
	Conns int `json:"conns"`
	// InFlight counts calls picked and not yet done, over all its
	// connections.
	InFlight int64 `json:"inFlight"`
	// Latency is the peak-EWMA latency (0 until measured).
	Latency time.Duration `json:"latencyNs"`
	// SuccessRate is the moving average of successes, 0 to 1.
	SuccessRate float64 `json:"successRate"`
	// Score is p2c's score; lower is preferred.
	Score float64 `json:"score"`
	// Ejected is set while the endpoint is ejected; Ejections counts them.
	Ejected   bool  `json:"ejected"`
	Ejections int64 `json:"ejections"`
	// Calls counts calls ended (the caller's cancellations excluded);
	// Failures, those that failed.
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
}

// Snapshot returns the state of every live grpckit balancer in the process,
// for admin pages and debugging. Each value is read atomically on its own;
// the whole is not one consistent instant.
func Snapshot() []State {
	live := lb.Live()
	out := make([]State, 0, len(live))
	for _, in := range live {
		st := State{Name: in.Name, Target: in.Target, Channel: in.ID, Client: in.Client, Ejected: in.Ejected,
			Endpoints: make([]EndpointState, 0, len(in.Subset))}
		for _, e := range in.Subset {
			calls, failures := e.Calls()
			s := e.State()
			st.Endpoints = append(st.Endpoints, EndpointState{
				Addr: e.Addr, Weight: e.Weight(), State: s, StateName: s.String(),
				Conns: e.Conns(), InFlight: e.InFlight(), Latency: time.Duration(e.Latency()), SuccessRate: e.SuccessRate(),
				Score: e.Score(), Ejected: e.IsEjected(), Ejections: e.Ejections(), Calls: calls, Failures: failures,
			})
		}
		out = append(out, st)
	}
	return out
}
