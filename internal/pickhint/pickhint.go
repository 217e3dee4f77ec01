// Package pickhint carries a hint from a client interceptor to grpckit's
// pickers through the attempt's context: which endpoints the attempt
// should avoid, and which endpoint the picker chose. Package hedge uses it
// to send a hedged attempt to an endpoint other than the first attempt's;
// balancer/p2c and balancer/wrr honor it. A context without a hint costs a
// picker one context lookup and nothing else.
package pickhint

import (
	"context"
	"sync/atomic"
)

// Hint is one attempt's hint. Avoid is set before the attempt starts and
// not changed after; the picker records its choice with Record.
type Hint struct {
	// Avoid lists the addresses the attempt should not be sent to when
	// another ready endpoint is usable.
	Avoid  []string
	picked atomic.Pointer[string]
	lost   atomic.Bool
}

// MarkLost records that another attempt answered first: the attempt is
// about to be cancelled, and its endpoint was at least as slow as the time
// it ran. Pickers then count its cancellation as a latency observation (a
// lower bound) instead of ignoring it as they ignore a caller's cancel, so
// that hedging does not hide a slow endpoint from a latency-aware
// balancer.
func (h *Hint) MarkLost() { h.lost.Store(true) }

// Lost reports whether MarkLost was called.
func (h *Hint) Lost() bool { return h.lost.Load() }

// Avoids reports whether addr is one of h's avoided addresses.
func (h *Hint) Avoids(addr string) bool {
	for _, a := range h.Avoid {
		if a == addr {
			return true
		}
	}
	return false
}

// Record records the address the picker chose; addr must not change
// afterwards (pickers pass the endpoint's own, long-lived field, so that
// recording allocates nothing). A later pick of the same attempt (grpc-go
// picks again when a transport fails before the stream starts) replaces
// it.
func (h *Hint) Record(addr *string) { h.picked.Store(addr) }

// Picked returns the address recorded last, or "" if none was.
func (h *Hint) Picked() string {
	if p := h.picked.Load(); p != nil {
		return *p
	}
	return ""
}

type key struct{}

// NewContext returns a copy of ctx carrying h.
func NewContext(ctx context.Context, h *Hint) context.Context {
	return context.WithValue(ctx, key{}, h)
}

// FromContext returns the hint ctx carries, or nil; ctx may be nil.
func FromContext(ctx context.Context) *Hint {
	if ctx == nil {
		return nil
	}
	h, _ := ctx.Value(key{}).(*Hint)
	return h
}
