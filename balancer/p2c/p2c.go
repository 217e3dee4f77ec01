package p2c

import (
	"math/rand/v2"
	"sync/atomic"

	"google.golang.org/grpc/balancer"

	"github.com/grpckit/grpckit/balancer/internal/lb"
	"github.com/grpckit/grpckit/internal/pickhint"
)

// Name is the balancer's registered name, for client.WithBalancer and
// service configs.
const Name = "p2c"

func init() {
	balancer.Register(newBuilder(Name, nil))
}

// newBuilder returns a builder registering as name; clock nil means the
// system clock. Tests build one with their own clock.
func newBuilder(name string, clock lb.Clock) balancer.Builder {
	return &lb.Builder{BalancerName: name, Picker: newPicker, Clock: clock}
}

type picker struct {
	g     *lb.Group
	ready []lb.Ready
	probe int64
	// fresh lists the ready endpoints never picked when the picker was
	// built; pending is set while some of them may still be.
	fresh   []int32
	pending atomic.Bool
}

func newPicker(g *lb.Group, ready []lb.Ready) balancer.Picker {
	p := &picker{g: g, ready: ready, probe: g.Config().ProbeInterval.Nanoseconds()}
	for i := range ready {
		if ready[i].EP.Unpicked() {
			p.fresh = append(p.fresh, int32(i))
		}
	}
	p.pending.Store(len(p.fresh) > 0)
	return p
}

// Pick implements balancer.Picker. An attempt whose context carries a
// pick hint (package hedge's hedged attempts) avoids the endpoints it names
// while another usable one is ready, and has the choice recorded.
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	now := p.g.Now()
	h := pickhint.FromContext(info.Ctx)
	var r *lb.Ready
	if h != nil && len(h.Avoid) > 0 {
		r = p.chooseAvoiding(now, h)
	}
	if r == nil && p.pending.Load() {
		r = p.claimFresh()
	}
	if r == nil {
		r = p.choose(now)
	}
	return r.Pick(now, h)
}

// chooseAvoiding is choose over the usable endpoints h does not avoid: two
// of them drawn at random (one pass, reservoir sampling), the better one
// returned. It returns nil when there is none. Only hedged attempts pay for
// the pass.
func (p *picker) chooseAvoiding(now int64, h *pickhint.Hint) *lb.Ready {
	var a, b *lb.Ready
	seen := 0
	for k := range p.ready {
		c := &p.ready[k]
		if h.Avoids(c.EP.Addr) || !c.EP.Usable(now) {
			continue
		}
		seen++
		switch {
		case seen == 1:
			a = c
		case seen == 2:
			b = c
		default:
			if j := rand.IntN(seen); j == 0 {
				a = c
			} else if j == 1 {
				b = c
			}
		}
	}
	if b == nil || (!a.EP.Near(b.EP) && a.EP.Less(b.EP)) || (a.EP.Near(b.EP) && rand.IntN(2) == 0) {
		return a
	}
	return b
}

// claimFresh returns a ready endpoint that was never picked, claiming its
// first pick, or nil when there is none left.
func (p *picker) claimFresh() *lb.Ready {
	for _, i := range p.fresh {
		if r := &p.ready[i]; r.EP.ClaimFirst() {
			return r
		}
	}
	p.pending.Store(false)
	return nil
}

// choose draws two ready endpoints and returns the better one.
func (p *picker) choose(now int64) *lb.Ready {
	n := len(p.ready)
	if n == 1 {
		p.ready[0].EP.Usable(now)
		return &p.ready[0]
	}
	x := rand.Uint64()
	// Multiply-shift maps 32 random bits onto [0, n) without dividing.
	i := int(uint64(uint32(x)) * uint64(n) >> 32)
	j := int((x >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	a, b := &p.ready[i], &p.ready[j]
	ua, ub := a.EP.Usable(now), b.EP.Usable(now)
	switch {
	case ua && ub:
		// a and b are a random pair in random order: when their scores are
		// near, a is a fair coin toss between them.
		win, lose := a, b
		if !a.EP.Near(b.EP) && b.EP.Less(a.EP) {
			win, lose = b, a
		}
		if lose.EP.Stale(now, p.probe) {
			return lose // not picked for probeInterval: probe it once
		}
		return win
	case ua:
		return a
	case ub:
		return b
	}
	// Both ejected: take the best usable endpoint, or the better of the two
	// if every endpoint is ejected.
	var best *lb.Ready
	for k := range p.ready {
		c := &p.ready[k]
		if c.EP.Usable(now) && (best == nil || c.EP.Less(best.EP)) {
			best = c
		}
	}
	if best != nil {
		return best
	}
	if b.EP.Less(a.EP) {
		return b
	}
	return a
}
