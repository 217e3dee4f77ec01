package live

import (
	"slices"
	"testing"
)

func TestSet(t *testing.T) {
	var s Set[int]
	if got := s.All(nil); len(got) != 0 {
		t.Fatalf("zero set: got %v, want empty", got)
	}
	for i := range 5 {
		s.Add(i)
	}
	s.Add(3)
	s.Remove(1)
	s.Remove(42)
	got := s.All(nil)
	slices.Sort(got)
	if want := []int{0, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("All(nil): got %v, want %v", got, want)
	}
	even := s.All(func(v int) bool { return v%2 == 0 })
	slices.Sort(even)
	if want := []int{0, 2, 4}; !slices.Equal(even, want) {
		t.Errorf("All(even): got %v, want %v", even, want)
	}
}
