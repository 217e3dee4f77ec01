package main

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteBarSVG checks that the charts are well-formed XML with a bar
// per value, labels escaped.
func TestWriteBarSVG(t *testing.T) {
	groups := []barGroup{
		{title: "1 in flight", bars: []bar{{label: "bare", value: 1}, {label: "a <b> & c", value: 2.5, lo: 2, hi: 3, hasRange: true}}},
		{title: "8 in flight", bars: []bar{{label: "bare", value: 1}}},
	}
	for _, tc := range []struct {
		name  string
		write func(path string) error
	}{
		{"plain", func(p string) error { return writeBarSVG(p, "title & more", groups) }},
		{"ref", func(p string) error { return writeBarSVGRef(p, "ratio", groups, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chart.svg")
			if err := tc.write(path); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d := xml.NewDecoder(strings.NewReader(string(b)))
			rects := 0
			for {
				tok, err := d.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("not well-formed XML: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
					rects++
				}
			}
			// One background and one per bar.
			if got, want := rects, 1+3; got != want {
				t.Errorf("got %d rects, want %d", got, want)
			}
		})
	}
}
