//go:build !race

package main

// raceEnabled reports whether the race detector is on: it changes
// allocation counts, so the allocation test skips its assertions.
const raceEnabled = false
