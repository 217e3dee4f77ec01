// Package budget is the token bucket that bounds extra attempts (retries,
// hedges) to a share of the calls: every eligible call deposits ratio of a
// token, each extra attempt spends a whole one, and a floor of
// minPerSecond attempts per second (a GCRA bucket holding one second's
// worth) lets a client with little traffic still send some. The balance is capped at
// 1000 calls' worth (at least one token), so that a quiet period does not
// store a burst.
package budget

import (
	"sync/atomic"
	"time"

	"github.com/grpckit/grpckit/internal/clock"
)

// Bucket is a budget; its methods are safe for concurrent use and take no
// lock. The zero Bucket refuses everything; build one with [New].
type Bucket struct {
	now      clock.Clock
	tokens   atomic.Int64 // milli-tokens
	deposit  int64
	capacity int64
	minTat   atomic.Int64 // the floor's theoretical arrival time
	minIv    int64        // ns between floor tokens; 0: no floor
}

// New returns a bucket that grows by ratio (0 to 1) per call and has a
// floor of minPerSecond; now nil means the real clock.
func New(ratio, minPerSecond float64, now clock.Clock) *Bucket {
	if now == nil {
		now = clock.Real
	}
	b := &Bucket{now: now, deposit: int64(ratio * 1000)}
	b.capacity = max(1000, b.deposit*1000)
	if minPerSecond > 0 {
		b.minIv = int64(float64(time.Second) / minPerSecond)
	}
	return b
}

// Fill deposits one call's share.
func (b *Bucket) Fill() {
	for {
		t := b.tokens.Load()
		if t >= b.capacity {
			return
		}
		if b.tokens.CompareAndSwap(t, min(b.capacity, t+b.deposit)) {
			return
		}
	}
}

// Spend takes one token, from the balance or else from the floor, and
// reports whether it could.
func (b *Bucket) Spend() bool {
	for {
		t := b.tokens.Load()
		if t < 1000 {
			break
		}
		if b.tokens.CompareAndSwap(t, t-1000) {
			return true
		}
	}
	if b.minIv == 0 {
		return false
	}
	now := b.now()
	for {
		tat := b.minTat.Load()
		next := max(tat, now) + b.minIv
		if next-now > int64(time.Second) {
			return false
		}
		if b.minTat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// Available returns the balance in tokens (the floor comes on top), and
// the most it may hold.
func (b *Bucket) Available() (tokens, capacity float64) {
	return float64(b.tokens.Load()) / 1000, float64(b.capacity) / 1000
}
