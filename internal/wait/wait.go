// Package wait polls a condition in tests: the one helper every package's
// tests used to carry a copy of.
package wait

import (
	"testing"
	"time"
)

// For polls cond every 5 ms until it is true and returns how long that
// took; it fails the test, naming what, when d passes first.
func For(tb testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	if !Poll(d, cond) {
		tb.Fatalf("%s: not true after %v", what, d)
	}
	return time.Since(start)
}

// Poll is For without the test: it reports whether cond became true
// within d, for callers that explain the failure themselves.
func Poll(d time.Duration, cond func() bool) bool {
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
