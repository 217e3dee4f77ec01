package methodname

import "testing"

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in, svc, m string
		ok         bool
	}{
		{"/pkg.Svc/Method", "/pkg.Svc", "Method", true},
		{"/a/b/c", "/a/b", "c", true},
		{"/a/*", "/a", "*", true},
		{"/a/", "", "", false},
		{"a/b/c", "", "", false},
		{"//m", "", "", false},
		{"", "", "", false},
		{"/abc", "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			svc, m, ok := Split(tc.in)
			if svc != tc.svc || m != tc.m || ok != tc.ok {
				t.Errorf("Split(%q): got %q, %q, %v, want %q, %q, %v", tc.in, svc, m, ok, tc.svc, tc.m, tc.ok)
			}
		})
	}
}
