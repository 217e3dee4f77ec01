package hedge

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// windowSize is how many recent latencies a window holds.
	windowSize = 1024
	// refreshEvery: the percentile is recomputed every refreshEvery
	// samples, and first when that many were taken.
	refreshEvery = 64
)

// window holds a method's recent latencies in a ring and the percentile
// computed from them. add costs two atomic operations, plus a sort of the
// ring (about 20 µs) every refreshEvery calls; percentile one atomic load.
type window struct {
	ring [windowSize]atomic.Int64
	n    atomic.Uint64
	pct  atomic.Int64 // ns; 0 until computed

	mu      sync.Mutex // held while recomputing; TryLock: one at a time
	scratch []int64
}

// add records a latency and, every refreshEvery samples, recomputes the
// p-th percentile.
func (w *window) add(d time.Duration, p float64) {
	i := w.n.Add(1)
	w.ring[(i-1)%windowSize].Store(int64(d))
	if i%refreshEvery != 0 || !w.mu.TryLock() {
		return
	}
	defer w.mu.Unlock()
	n := int(min(i, windowSize))
	if w.scratch == nil {
		w.scratch = make([]int64, windowSize)
	}
	s := w.scratch[:n]
	for k := range s {
		s[k] = w.ring[k].Load()
	}
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(n))) - 1
	w.pct.Store(max(1, s[min(max(k, 0), n-1)]))
}

// percentile returns the last computed percentile; ok is false until one
// was.
func (w *window) percentile() (time.Duration, bool) {
	v := w.pct.Load()
	return time.Duration(v), v > 0
}
