package shed

import (
	"testing"
	"time"
)

func TestParseCPUStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n", 1500 * time.Microsecond, true},
		{"user_usec 1\nusage_usec 7", 7 * time.Microsecond, true},
		{"user_usec 1\n", 0, false},
		{"usage_usec -3\n", 0, false},
		{"usage_usec x\n", 0, false},
		{"usage_usec 99999999999999999999\n", 0, false},
	} {
		got, err := parseCPUStat([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseCPUStat(%q): got %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseCPUMax(t *testing.T) {
	for _, tc := range []struct {
		in        string
		want      float64
		ok, valid bool
	}{
		{"200000 100000\n", 2, true, true},
		{"50000 100000", 0.5, true, true},
		{"max 100000\n", 0, false, true},
		{"max", 0, false, false},
		{"0 100000", 0, false, false},
		{"100 0", 0, false, false},
		{"a b", 0, false, false},
	} {
		got, ok, err := parseCPUMax([]byte(tc.in))
		if got != tc.want || ok != tc.ok || (err == nil) != tc.valid {
			t.Errorf("parseCPUMax(%q): got %v, %v, %v; want %v, %v, valid=%v", tc.in, got, ok, err, tc.want, tc.ok, tc.valid)
		}
	}
}

func FuzzParseCPUStat(f *testing.F) {
	for _, s := range []string{"usage_usec 1500\nuser_usec 1000\n", "usage_usec", "", "usage_usec 9223372036854775807"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseCPUStat(b)
		if err == nil && d < 0 {
			t.Fatalf("negative usage %v from %q", d, b)
		}
	})
}

func FuzzParseCPUMax(f *testing.F) {
	for _, s := range []string{"max 100000", "200000 100000", "", "1 -1", "max"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cpus, ok, err := parseCPUMax(b)
		if ok && (err != nil || !(cpus > 0)) {
			t.Fatalf("ok with cpus=%v err=%v from %q", cpus, err, b)
		}
	})
}
