package resolver

import (
	"slices"

	grpcresolver "google.golang.org/grpc/resolver"
)

// endpointSet is the current set of instances and the gRPC endpoint list
// published from it. Changes cost O(1) each (plus the instances sharing an
// address); several instances with the same address are published once.
type endpointSet struct {
	byKey  map[string]Endpoint
	byAddr map[string]*addrSlot
	list   []grpcresolver.Endpoint
}

type addrSlot struct {
	idx   int                 // position in list
	owner string              // key whose Endpoint is published
	keys  map[string]struct{} // every key with this address
}

func newEndpointSet() endpointSet {
	return endpointSet{byKey: map[string]Endpoint{}, byAddr: map[string]*addrSlot{}}
}

// len returns how many endpoints are published.
func (s *endpointSet) len() int { return len(s.list) }

// put adds or changes key's endpoint and reports whether the published list
// changed.
func (s *endpointSet) put(key string, e Endpoint) bool {
	old, had := s.byKey[key]
	if had && old.Equal(e) {
		return false
	}
	s.byKey[key] = e
	if had && old.Addr == e.Addr {
		slot := s.byAddr[e.Addr]
		if slot.owner != key {
			return false
		}
		s.list[slot.idx] = ToGRPC(e)
		return true
	}
	changed := false
	if had {
		changed = s.unlink(key, old.Addr)
	}
	slot, ok := s.byAddr[e.Addr]
	if !ok {
		s.byAddr[e.Addr] = &addrSlot{idx: len(s.list), owner: key, keys: map[string]struct{}{key: {}}}
		s.list = append(s.list, ToGRPC(e))
		return true
	}
	slot.keys[key] = struct{}{}
	if key < slot.owner {
		slot.owner = key
		s.list[slot.idx] = ToGRPC(e)
		return true
	}
	return changed
}

// delete removes key and reports whether the published list changed.
func (s *endpointSet) delete(key string) bool {
	old, had := s.byKey[key]
	if !had {
		return false
	}
	delete(s.byKey, key)
	return s.unlink(key, old.Addr)
}

// unlink removes key from its address slot (key is already out of, or
// changed in, byKey) and reports whether the published list changed.
func (s *endpointSet) unlink(key, addr string) bool {
	slot := s.byAddr[addr]
	delete(slot.keys, key)
	if len(slot.keys) == 0 {
		last := len(s.list) - 1
		if slot.idx != last {
			moved := s.list[last]
			s.list[slot.idx] = moved
			s.byAddr[moved.Addresses[0].Addr].idx = slot.idx
		}
		s.list[last] = grpcresolver.Endpoint{}
		s.list = s.list[:last]
		delete(s.byAddr, addr)
		return true
	}
	if slot.owner != key {
		return false
	}
	// Publish the smallest remaining key, so the choice is deterministic.
	first := true
	for k := range slot.keys {
		if first || k < slot.owner {
			slot.owner, first = k, false
		}
	}
	s.list[slot.idx] = ToGRPC(s.byKey[slot.owner])
	return true
}

// replace makes the set equal to m and reports whether the published list
// changed.
func (s *endpointSet) replace(m map[string]Endpoint) bool {
	changed := false
	for k := range s.byKey {
		if _, ok := m[k]; !ok {
			changed = s.delete(k) || changed
		}
	}
	for k, e := range m {
		changed = s.put(k, e) || changed
	}
	return changed
}

// snapshot returns a copy of the published list that gRPC may keep.
func (s *endpointSet) snapshot() []grpcresolver.Endpoint { return slices.Clone(s.list) }
