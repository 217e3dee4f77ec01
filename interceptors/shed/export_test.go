package shed

// Test hooks: the clock and the random source are not part of the public
// API; the tests of this package set them through these names.
var (
	WithClock = withClock
)
