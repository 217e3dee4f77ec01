package breaker

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// numBuckets is the number of buckets of the throttle's sliding window.
const numBuckets = 16

// Throttle is Google SRE's client-side adaptive throttling for one target
// (see the package doc). It is safe for concurrent use.
type Throttle struct {
	cfg   *config
	shift uint // a bucket spans 1<<shift ns
	k     float64
	rand  func() float64

	ring [numBuckets]tbucket
	// past holds the sums over the window's complete buckets, refreshed when
	// the current bucket changes, so that admission reads 2 sums, not 32.
	pastReq, pastAcc atomic.Int64
	pastEpoch        atomic.Int64

	rejected prometheus.Counter
}

type tbucket struct {
	epoch    atomic.Int64
	requests atomic.Int64
	accepts  atomic.Int64
}

// NewThrottle returns an adaptive throttle for calls to target (used in
// metric labels). With [WithRegisterer] it exports
// grpckit_breaker_rejected_total{target,key="throttle"}.
func NewThrottle(target string, opts ...Option) (*Throttle, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if !cfg.failureSet {
		cfg.failure[codes.ResourceExhausted] = true
	}
	t := &Throttle{cfg: cfg, shift: uint(bits.Len64(uint64(cfg.window/numBuckets) - 1)), k: cfg.k, rand: cfg.rand}
	if t.rand == nil {
		t.rand = rand.Float64
	}
	for i := range t.ring {
		t.ring[i].epoch.Store(-1)
	}
	t.pastEpoch.Store(-1)
	if cfg.reg != nil {
		vec, err := register(cfg.reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_breaker_rejected_total",
			Help: "Calls rejected by a circuit breaker without being sent.",
		}, []string{"target", "key"}))
		if err != nil {
			return nil, err
		}
		t.rejected = vec.WithLabelValues(target, "throttle")
	}
	return t, nil
}

// bucket returns the current bucket, resetting it if it is stale, and
// refreshes the past sums when the epoch has moved on.
func (t *Throttle) bucket(epoch int64) *tbucket {
	b := &t.ring[epoch%numBuckets]
	if e := b.epoch.Load(); e != epoch {
		if b.epoch.CompareAndSwap(e, epoch) {
			b.requests.Store(0)
			b.accepts.Store(0)
		}
	}
	if pe := t.pastEpoch.Load(); pe != epoch && t.pastEpoch.CompareAndSwap(pe, epoch) {
		var req, acc int64
		for i := range t.ring {
			o := &t.ring[i]
			if e := o.epoch.Load(); e < epoch && e > epoch-numBuckets {
				req += o.requests.Load()
				acc += o.accepts.Load()
			}
		}
		t.pastReq.Store(req)
		t.pastAcc.Store(acc)
	}
	return b
}

// RejectProbability returns the probability with which a call would be
// rejected now.
func (t *Throttle) RejectProbability() float64 {
	b := t.bucket(t.cfg.now() >> t.shift)
	req := float64(t.pastReq.Load() + b.requests.Load())
	acc := float64(t.pastAcc.Load() + b.accepts.Load())
	return max(0, (req-t.k*acc)/(req+1))
}

func (t *Throttle) admit(string) (ticket, error) {
	epoch := t.cfg.now() >> t.shift
	b := t.bucket(epoch)
	req := float64(t.pastReq.Load() + b.requests.Load())
	acc := float64(t.pastAcc.Load() + b.accepts.Load())
	b.requests.Add(1)
	if excess := req - t.k*acc; excess > 0 && t.rand()*(req+1) < excess {
		if t.rejected != nil {
			t.rejected.Inc()
		}
		return ticket{}, errRejected
	}
	return ticket{word: uint64(epoch)}, nil
}

func (t *Throttle) done(tk ticket, o outcome) {
	if o != success {
		return
	}
	epoch := int64(tk.word)
	if b := &t.ring[epoch%numBuckets]; b.epoch.Load() == epoch {
		b.accepts.Add(1)
	}
}

func (t *Throttle) classify(err error) outcome { return t.cfg.classify(err) }
