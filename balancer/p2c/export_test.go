package p2c

// NewBuilder lets the external tests register a p2c builder with their own
// clock.
var NewBuilder = newBuilder
