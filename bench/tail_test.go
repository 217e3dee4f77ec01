package main

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestTail runs every balancer briefly and checks what the table claims:
// every row present, calls made, no errors, the harness seeing which
// backend answered (round robin gives the slow backend its quarter), and
// grpckit's p2c sending the slow backend less than its fair share. It
// asserts no latency.
func TestTail(t *testing.T) {
	if testing.Short() {
		t.Skip("about 12 s of load")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rows, err := runTail(context.Background(), TailConfig{Rate: 200, Duration: time.Second, Repeats: 1, Warmup: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := tailBalancers()
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if r.Balancer != want[i].name {
			t.Errorf("row %d: got %q, want %q", i, r.Balancer, want[i].name)
		}
		if r.Calls == 0 {
			t.Errorf("%s: got 0 calls, want some", r.Balancer)
		}
		if r.Errors != 0 {
			t.Errorf("%s: got %d errors %v, want 0", r.Balancer, r.Errors, r.ErrorCodes)
		}
		if r.P50 <= 0 {
			t.Errorf("%s: got p50 %v, want > 0", r.Balancer, r.P50)
		}
		switch r.Balancer {
		case tailRoundRobin:
			// Round robin ignores latency: a quarter of the calls, give or
			// take the calls of the last incomplete turn.
			if r.SlowShare < 0.2 || r.SlowShare > 0.3 {
				t.Errorf("%s: got slow share %.3f, want about 0.25", r.Balancer, r.SlowShare)
			}
		case tailGrpckitP2C:
			if r.SlowShare >= 0.25 {
				t.Errorf("%s: got slow share %.3f, want below the fair share 0.25", r.Balancer, r.SlowShare)
			}
		}
	}
	t.Logf("\n%s", tailMarkdown(rows))

	path := filepath.Join(t.TempDir(), "tail.svg")
	if err := writeTailSVG(path, rows); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the SVG is not well-formed XML: %v", err)
			}
			break
		}
	}
}
