package server

import (
	"fmt"

	"github.com/grpckit/grpckit/internal/chain"
)

// Slot names a position in the server's interceptor chain. The builder owns
// the order; this file is the one place that states it.
//
// Default order, first = outermost (it sees the call first and the result
// last):
//
//	SlotTracing     spans (the OpenTelemetry metrics stats handler runs outside every slot)
//	SlotMetrics     counts every call, rejections included
//	SlotLogging     one line per call, rejections included
//	SlotRecovery    a panic below becomes codes.Internal, recorded above
//	SlotLimit       load shedding, rate and concurrency limits: refuse cheaply
//	SlotAuth        authentication and authorization
//	SlotValidation  request validation
//	SlotUser        user interceptors, innermost: right before the handler
//
// Interceptors that grpckit installs for a slot run first within it; the
// ones a user adds with [WithUnaryInterceptor] or [WithStreamInterceptor] at
// the same slot run right after (inside) them, in the order added. Unary
// calls and streams use the same order. [WithOrder] overrides it.
type Slot int

// The slots of the server chain, in their default order.
const (
	SlotTracing Slot = iota
	SlotMetrics
	SlotLogging
	SlotRecovery
	SlotLimit
	SlotAuth
	SlotValidation
	SlotUser
	numSlots
)

var slotNames = []string{"tracing", "metrics", "logging", "recovery", "limit", "auth", "validation", "user"}

// String returns the slot's lowercase name.
func (s Slot) String() string {
	if s >= 0 && s < numSlots {
		return slotNames[s]
	}
	return fmt.Sprintf("Slot(%d)", int(s))
}

// DefaultOrder returns the server's default slot order, outermost first.
func DefaultOrder() []Slot {
	return []Slot{SlotTracing, SlotMetrics, SlotLogging, SlotRecovery, SlotLimit, SlotAuth, SlotValidation, SlotUser}
}

func checkOrder(order []Slot) error {
	if err := chain.CheckOrder(order, slotNames); err != nil {
		return fmt.Errorf("server: WithOrder: %w", err)
	}
	return nil
}

// merge flattens the chain: per slot, grpckit's interceptors, then the user's.
func merge[T any](order []Slot, builtin, user [][]T) []T { return chain.Merge(order, builtin, user) }
