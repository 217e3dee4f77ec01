// Package clock gives grpckit's time-dependent hot paths a cheap, injectable
// monotonic clock.
//
// A [Clock] returns nanoseconds on a monotonic scale with an arbitrary
// origin. The real clock reads only the runtime's monotonic counter
// (time.Since on a fixed origin), which costs a fraction of time.Now, which
// also reads the wall clock. Tests inject [Fake], or any func() time.Time
// through [FromTime].
package clock

import (
	"sync/atomic"
	"time"
)

// Clock returns the current time in nanoseconds on a monotonic scale.
type Clock func() int64

// origin is the fixed point the real clock measures from. It is set once at
// package load and never changes.
var origin = time.Now()

// Real reads the runtime's monotonic clock.
func Real() int64 { return int64(time.Since(origin)) }

// FromTime adapts a func() time.Time (time.Now, a fake's Now) to a Clock.
// A nil now gives [Real].
func FromTime(now func() time.Time) Clock {
	if now == nil {
		return Real
	}
	return func() int64 { return now().UnixNano() }
}

// Fake is a manually advanced clock for tests. The zero value starts at a
// fixed, non-zero instant; it is safe for concurrent use.
type Fake struct {
	ns atomic.Int64
}

// fakeEpoch is where a zero Fake starts: far from 0 so that code which
// treats 0 as "unset" is exercised honestly.
var fakeEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Now returns the fake's current time.
func (f *Fake) Now() time.Time { return fakeEpoch.Add(time.Duration(f.ns.Load())) }

// Advance moves the fake forward by d.
func (f *Fake) Advance(d time.Duration) { f.ns.Add(int64(d)) }
