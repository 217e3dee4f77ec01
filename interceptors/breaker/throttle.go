package breaker

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit/internal/clock"
)

// numBuckets is the number of buckets of the throttle's sliding window.
const numBuckets = 16

// A bucket's counts are packed in one word, so that a call costs one
// atomic add: requests in the low half, accepts in the high half.
const (
	oneRequest = 1
	oneAccept  = 1 << 32
)

func unpack(w uint64) (requests, accepts float64) {
	return float64(uint32(w)), float64(w >> 32)
}

// Throttle is Google SRE's client-side adaptive throttling for one target
// (see the package doc). It is safe for concurrent use.
//
// A call costs one clock read, a few atomic loads and one atomic add: an
// admitted call is counted when it completes (as a request, and an accept
// if it succeeded), a rejected one when it is rejected.
type Throttle struct {
	now   clock.Clock
	shift uint // a bucket spans 1<<shift ns
	k     float64
	rand  func() float64
	cfg   *config

	ring [numBuckets]tbucket
	// past holds the packed sums over the window's complete buckets,
	// refreshed when the current bucket changes, so that admission reads
	// one word, not sixteen.
	past      atomic.Uint64
	pastEpoch atomic.Int64

	rejected prometheus.Counter
}

type tbucket struct {
	epoch  atomic.Int64
	counts atomic.Uint64
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
	t := &Throttle{
		now:   cfg.now,
		shift: uint(bits.Len64(uint64(cfg.window/numBuckets) - 1)),
		k:     cfg.k,
		rand:  cfg.rand,
		cfg:   cfg,
	}
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
	b := &t.ring[epoch&(numBuckets-1)]
	if e := b.epoch.Load(); e != epoch && b.epoch.CompareAndSwap(e, epoch) {
		b.counts.Store(0)
	}
	if pe := t.pastEpoch.Load(); pe != epoch && t.pastEpoch.CompareAndSwap(pe, epoch) {
		var sum uint64
		for i := range t.ring {
			o := &t.ring[i]
			if e := o.epoch.Load(); e < epoch && e > epoch-numBuckets {
				sum += o.counts.Load()
			}
		}
		t.past.Store(sum)
	}
	return b
}

// RejectProbability returns the probability with which a call would be
// rejected now.
func (t *Throttle) RejectProbability() float64 {
	req, acc := unpack(t.past.Load() + t.bucket(t.now()>>t.shift).counts.Load())
	return max(0, (req-t.k*acc)/(req+1))
}

func (t *Throttle) admit(string) (ticket, error) {
	epoch := t.now() >> t.shift
	b := t.bucket(epoch)
	req, acc := unpack(t.past.Load() + b.counts.Load())
	if excess := req - t.k*acc; excess > 0 && t.rand()*(req+1) < excess {
		b.counts.Add(oneRequest)
		if t.rejected != nil {
			t.rejected.Inc()
		}
		return ticket{}, errRejected
	}
	return ticket{word: uint64(epoch)}, nil
}

func (t *Throttle) done(tk ticket, o outcome) {
	epoch := int64(tk.word)
	b := &t.ring[epoch&(numBuckets-1)]
	if b.epoch.Load() != epoch {
		return // the bucket has left the window
	}
	if o == success {
		b.counts.Add(oneRequest + oneAccept)
	} else {
		b.counts.Add(oneRequest)
	}
}

func (t *Throttle) config() *config { return t.cfg }
