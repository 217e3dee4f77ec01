// Package chain holds the slot machinery shared by the server and client
// builders: interceptors are grouped by slot, and a slot order flattens them
// into one chain, first = outermost. [UnaryClient] and [StreamClient] run a
// client chain without grpc-go's per-call closures.
package chain

import (
	"fmt"
	"reflect"
)

// Slots groups unary and stream interceptors by slot index.
type Slots[U, S any] struct {
	Unary  [][]U
	Stream [][]S
}

// New returns Slots with room for n slots.
func New[U, S any](n int) Slots[U, S] {
	return Slots[U, S]{Unary: make([][]U, n), Stream: make([][]S, n)}
}

// Flatten returns the interceptors of every slot in the given order. Within a
// slot, interceptors keep the order in which they were added.
func Flatten[S ~int, T any](order []S, bySlot [][]T) []T {
	var out []T
	for _, s := range order {
		out = append(out, bySlot[s]...)
	}
	return out
}

// Merge returns, slot by slot in the given order, the interceptors of first
// followed by those of then: grpckit's own interceptors for a slot run
// outside the user's for the same slot.
func Merge[S ~int, T any](order []S, first, then [][]T) []T {
	var out []T
	for _, s := range order {
		out = append(out, first[s]...)
		out = append(out, then[s]...)
	}
	return out
}

// CheckOrder reports an error unless order names each of the n slots exactly
// once. names gives each slot's name for the message.
func CheckOrder[S ~int](order []S, names []string) error {
	n := len(names)
	if len(order) != n {
		return fmt.Errorf("order names %d slots, want all %d", len(order), n)
	}
	seen := make([]bool, n)
	for _, s := range order {
		if int(s) < 0 || int(s) >= n {
			return fmt.Errorf("unknown slot %d", int(s))
		}
		if seen[s] {
			return fmt.Errorf("slot %s appears twice", names[s])
		}
		seen[s] = true
	}
	return nil
}

// Add appends xs to slot s of bySlot. It rejects an unknown slot and nil
// interceptors, so that a bad option fails at construction, not at the first
// call.
func Add[S ~int, T any](bySlot [][]T, s S, names []string, xs []T) error {
	if int(s) < 0 || int(s) >= len(bySlot) {
		return fmt.Errorf("unknown slot %d", int(s))
	}
	for _, x := range xs {
		if v := reflect.ValueOf(x); !v.IsValid() || (v.Kind() == reflect.Func && v.IsNil()) {
			return fmt.Errorf("nil interceptor at slot %s", names[s])
		}
	}
	bySlot[s] = append(bySlot[s], xs...)
	return nil
}
