package resolver

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff computes retry delays with exponential growth and full jitter.
// Sources and registrars use it between attempts. The zero value uses the
// defaults: Min 100ms, Max 5s.
type Backoff struct {
	// Min is the delay ceiling of the first retry. Default 100ms.
	Min time.Duration
	// Max caps the delay ceiling. Default 5s.
	Max time.Duration
}

// Delay returns the delay before retry number attempt (0 for the first): a
// random duration in [ceil/2, ceil], where ceil = Min·2^attempt capped at
// Max.
func (b Backoff) Delay(attempt int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 5 * time.Second
	}
	if hi < lo {
		hi = lo
	}
	ceil := lo
	for i := 0; i < attempt && ceil < hi; i++ {
		ceil *= 2
	}
	ceil = min(ceil, hi)
	half := ceil / 2
	return half + rand.N(ceil-half+1)
}

// Sleep waits d or until ctx ends, and reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
