// Package live keeps the set of live objects of one kind (resolvers,
// balancers) for admin pages and metrics collectors. It is machinery, not
// configuration: objects add themselves when built and leave when closed.
package live

import "sync"

// Set is a concurrency-safe set of live objects. The zero value is ready.
type Set[T comparable] struct {
	mu sync.Mutex
	m  map[T]struct{}
}

// Add adds v.
func (s *Set[T]) Add(v T) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[T]struct{})
	}
	s.m[v] = struct{}{}
	s.mu.Unlock()
}

// Remove removes v.
func (s *Set[T]) Remove(v T) {
	s.mu.Lock()
	delete(s.m, v)
	s.mu.Unlock()
}

// All returns the members for which keep returns true (all of them when
// keep is nil), in no particular order.
func (s *Set[T]) All(keep func(T) bool) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]T, 0, len(s.m))
	for v := range s.m {
		if keep == nil || keep(v) {
			out = append(out, v)
		}
	}
	return out
}
