package lb

import (
	_ "unsafe" // for go:linkname
)

// Clock returns monotonic nanoseconds. Tests inject their own; the default is
// the runtime's monotonic clock, which costs one vDSO call where time.Now
// costs two.
type Clock func() int64

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// SystemClock is the default Clock.
func SystemClock() int64 { return nanotime() }
