package main

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The program runs and prints the sum.
func Example() {
	main()
	// Output: 2 + 3 = 5
}

// TestREADME keeps the README's quick start equal to this program: the
// snippet is main.go, verbatim.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quick start\n")
	if !ok {
		t.Fatal(`README.md has no "## Quick start" section`)
	}
	_, block, ok := strings.Cut(section, "\n```go\n")
	if !ok {
		t.Fatal("README.md's quick start has no ```go block")
	}
	snippet, _, ok := strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatal("README.md's quick start block does not end")
	}
	got, want := strings.Split(snippet, "\n"), strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Fatalf("README.md's quick start differs from examples/quickstart/main.go at line %d:\ngot  %q\nwant %q\n(paste main.go into the README)", i+1, g, w)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("README.md's quick start has %d lines, examples/quickstart/main.go %d (paste main.go into the README)", len(got), len(want))
	}
}
