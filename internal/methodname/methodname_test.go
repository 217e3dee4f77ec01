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

func TestTable(t *testing.T) {
	var tb Table[int]
	if _, ok := tb.Lookup("/a.S/M"); ok {
		t.Fatal("empty table: got a value")
	}
	for _, p := range []string{"/a.S/*", "/a.S/M", "/b.T/N"} {
		if err := tb.Set(p, len(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tb.Set("nope", 1); err == nil {
		t.Error("Set(nope): got nil, want an error")
	}
	for _, tc := range []struct {
		method string
		want   int
		ok     bool
	}{
		{"/a.S/M", len("/a.S/M"), true},     // exact wins
		{"/a.S/Other", len("/a.S/*"), true}, // its service
		{"/b.T/N", len("/b.T/N"), true},
		{"/b.T/Other", 0, false},
		{"bad", 0, false},
	} {
		if got, ok := tb.Lookup(tc.method); got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%q): got %d, %v, want %d, %v", tc.method, got, ok, tc.want, tc.ok)
		}
	}
}
