package wrr

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/balancer/internal/lb"
)

// Name is the balancer's registered name, for client.WithBalancer and
// service configs.
const Name = "wrr"

// maxSchedule bounds a picker's schedule (computing it costs O(maxSchedule ×
// endpoints) on the first pick); larger weight sums are scaled down.
const maxSchedule = 1 << 12

func init() {
	balancer.Register(newBuilder(Name, nil))
}

// newBuilder returns a builder registering as name; clock nil means the
// system clock.
func newBuilder(name string, clock lb.Clock) balancer.Builder {
	return &lb.Builder{BalancerName: name, Picker: newPicker, Clock: clock}
}

type picker struct {
	g     *lb.Group
	ready []lb.Ready
	next  atomic.Uint64
	once  sync.Once
	order []int32 // indexes into ready
}

func newPicker(g *lb.Group, ready []lb.Ready) balancer.Picker {
	p := &picker{g: g, ready: ready}
	p.next.Store(rand.Uint64())
	return p
}

// Pick implements balancer.Picker.
func (p *picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	p.once.Do(p.schedule)
	now := p.g.Now()
	n := uint64(len(p.order))
	i := p.next.Add(1)
	r := &p.ready[p.order[i%n]]
	for k := uint64(1); !r.EP.Usable(now) && k < n; k++ {
		r = &p.ready[p.order[(i+k)%n]]
	}
	return balancer.PickResult{SubConn: r.SC, Done: r.EP.Pick(now)}, nil
}

// schedule computes one cycle of smooth weighted round robin (nginx's
// algorithm: every endpoint gains its weight, the richest is picked and pays
// the total).
func (p *picker) schedule() {
	ws := weights(p.ready)
	var total int64
	for _, w := range ws {
		total += w
	}
	cur := make([]int64, len(ws))
	p.order = make([]int32, 0, total)
	for range total {
		best := 0
		for i, w := range ws {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		p.order = append(p.order, int32(best))
	}
}

// weights returns the endpoints' weights divided by their greatest common
// divisor and scaled so that they sum to at most maxSchedule (every weight
// stays ≥ 1).
func weights(ready []lb.Ready) []int64 {
	ws := make([]int64, len(ready))
	var g, sum int64
	for i, r := range ready {
		ws[i] = int64(r.EP.Weight())
		g = gcd(g, ws[i])
	}
	for i := range ws {
		ws[i] /= g
		sum += ws[i]
	}
	if limit := int64(maxSchedule); sum > limit {
		for i := range ws {
			if int64(len(ws)) >= limit {
				ws[i] = 1
			} else {
				ws[i] = max(1, ws[i]*(limit-int64(len(ws)))/sum)
			}
		}
	}
	return ws
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
