package methodname

import "fmt"

// Table maps method patterns to values: a full name, "/pkg.Service/Method",
// or "/pkg.Service/*" for every method of a service; an exact name wins
// over its service. The zero Table is empty and ready; it is not safe for
// concurrent writes, and is read-only once built.
type Table[T any] struct {
	exact, services map[string]T
}

// Set maps pattern to v, replacing an earlier value for the same pattern.
func (t *Table[T]) Set(pattern string, v T) error {
	svc, name, ok := Split(pattern)
	if !ok {
		return fmt.Errorf("%q is not /package.Service/Method or /package.Service/*", pattern)
	}
	if name == "*" {
		if t.services == nil {
			t.services = map[string]T{}
		}
		t.services[svc] = v
		return nil
	}
	if t.exact == nil {
		t.exact = map[string]T{}
	}
	t.exact[pattern] = v
	return nil
}

// Lookup returns the value for method.
func (t *Table[T]) Lookup(method string) (T, bool) {
	if v, ok := t.exact[method]; ok {
		return v, true
	}
	var zero T
	if len(t.services) == 0 {
		return zero, false
	}
	svc, _, ok := Split(method)
	if !ok {
		return zero, false
	}
	v, ok := t.services[svc]
	return v, ok
}
