package wrr

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/balancer/internal/lb"
	"github.com/grpckit/grpckit/internal/pickhint"
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

// Pick implements balancer.Picker. An attempt whose context carries a
// pick hint (package hedge's hedged attempts) skips the endpoints it
// avoids while another usable one is in the schedule, and has the choice
// recorded.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	p.once.Do(p.schedule)
	now := p.g.Now()
	h := pickhint.FromContext(info.Ctx)
	n := uint64(len(p.order))
	i := p.next.Add(1)
	r := &p.ready[p.order[i%n]]
	if h != nil && len(h.Avoid) > 0 {
		for k := uint64(1); (h.Avoids(r.EP.Addr) || !r.EP.Usable(now)) && k < n; k++ {
			r = &p.ready[p.order[(i+k)%n]]
		}
	}
	for k := uint64(1); !r.EP.Usable(now) && k < n; k++ {
		r = &p.ready[p.order[(i+k)%n]]
	}
	return r.Pick(now, h)
}

// schedule computes one cycle of smooth weighted round robin: nginx's
// algorithm (every endpoint gains its weight, the richest is picked and pays
// the total) up to nginxMax endpoints; beyond, where that costs too much, each
// endpoint's picks are spread evenly over the cycle (at (k+½)/weight) and
// merged. Equal weights give plain round robin.
func (p *picker) schedule() {
	ws := weights(p.ready)
	var total int64
	equal := true
	for _, w := range ws {
		total += w
		equal = equal && w == ws[0]
	}
	p.order = make([]int32, 0, total)
	switch {
	case equal:
		for i := range ws {
			p.order = append(p.order, int32(i))
		}
	case len(ws) > nginxMax:
		type slot struct {
			at float64
			i  int32
		}
		slots := make([]slot, 0, total)
		for i, w := range ws {
			for k := range w {
				slots = append(slots, slot{(float64(k) + 0.5) / float64(w), int32(i)})
			}
		}
		slices.SortFunc(slots, func(a, b slot) int {
			if c := cmp.Compare(a.at, b.at); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		for _, s := range slots {
			p.order = append(p.order, s.i)
		}
	default:
		cur := make([]int64, len(ws))
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
}

// nginxMax is the most endpoints scheduled with nginx's O(total × endpoints)
// algorithm.
const nginxMax = 256

// weights returns the endpoints' weights divided by their greatest common
// divisor and, when they sum to more than the schedule may hold, scaled down
// (every weight stays ≥ 1).
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
	// The schedule may hold maxSchedule picks, or 4 per endpoint if more.
	if limit := max(int64(maxSchedule), 4*int64(len(ws))); sum > limit {
		for i := range ws {
			ws[i] = max(1, ws[i]*(limit-int64(len(ws)))/sum)
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
