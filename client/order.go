package client

import (
	"fmt"

	"github.com/grpckit/grpckit/internal/chain"
)

// Slot names a position in the client's interceptor chain. The builder owns
// the order; this file is the one place that states it.
//
// Default order, first = outermost (it sees the call first and the result
// last):
//
//	SlotTracing    spans (the OpenTelemetry metrics stats handler runs per attempt, below every slot)
//	SlotMetrics    counts every call as the caller sees it
//	SlotLogging    one line per call as the caller sees it
//	SlotTimeout    the default deadline: every attempt shares one budget
//	SlotRetry      retries, then hedging (WithHedging), both judged attempt
//	               by attempt by the breaker below
//	SlotBreaker    circuit breaking per target and method: an open breaker
//	               fails fast and is never retried
//	SlotRateLimit  client-side rate limiting
//	SlotUser       user interceptors, innermost: right before the wire
//
// Interceptors that grpckit installs for a slot run first within it; the
// ones a user adds with [WithUnaryInterceptor] or [WithStreamInterceptor] at
// the same slot run right after (inside) them, in the order added. Unary
// calls and streams use the same order. [WithOrder] overrides it.
type Slot int

// The slots of the client chain, in their default order.
const (
	SlotTracing Slot = iota
	SlotMetrics
	SlotLogging
	SlotTimeout
	SlotRetry
	SlotBreaker
	SlotRateLimit
	SlotUser
	numSlots
)

var slotNames = []string{"tracing", "metrics", "logging", "timeout", "retry", "breaker", "ratelimit", "user"}

// String returns the slot's lowercase name.
func (s Slot) String() string {
	if s >= 0 && s < numSlots {
		return slotNames[s]
	}
	return fmt.Sprintf("Slot(%d)", int(s))
}

// DefaultOrder returns the client's default slot order, outermost first.
func DefaultOrder() []Slot {
	return []Slot{SlotTracing, SlotMetrics, SlotLogging, SlotTimeout, SlotRetry, SlotBreaker, SlotRateLimit, SlotUser}
}

func checkOrder(order []Slot) error {
	if err := chain.CheckOrder(order, slotNames); err != nil {
		return fmt.Errorf("client: WithOrder: %w", err)
	}
	return nil
}

// merge flattens the chain: per slot, grpckit's interceptors, then the user's.
func merge[T any](order []Slot, builtin, user [][]T) []T { return chain.Merge(order, builtin, user) }
