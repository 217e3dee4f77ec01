package main

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestTail runs every balancer briefly and checks the rows are sane: all
// present, calls made, no errors, and grpckit's p2c sending the slow backend
// less than its fair share. It asserts no latency.
func TestTail(t *testing.T) {
	if testing.Short() {
		t.Skip("about 12 s of load")
	}
	before := runtime.NumGoroutine()
	rows, err := runTail(context.Background(), TailConfig{Rate: 200, Duration: time.Second, Repeats: 1, Warmup: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(tailBalancerNames) {
		t.Fatalf("got %d rows, want %d", len(rows), len(tailBalancerNames))
	}
	for i, r := range rows {
		if r.Balancer != tailBalancerNames[i] {
			t.Errorf("row %d: got %q, want %q", i, r.Balancer, tailBalancerNames[i])
		}
		if r.Calls == 0 {
			t.Errorf("%s: got 0 calls, want some", r.Balancer)
		}
		if r.Errors != 0 {
			t.Errorf("%s: got %d errors %v, want 0", r.Balancer, r.Errors, r.ErrorCodes)
		}
		if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.P999 {
			t.Errorf("%s: got p50 %v, p99 %v, p99.9 %v, want 0 < p50 <= p99 <= p99.9", r.Balancer, r.P50, r.P99, r.P999)
		}
		if r.Balancer == tailGrpckitP2C && r.SlowShare >= 0.25 {
			t.Errorf("%s: got slow share %.3f, want below the fair share 0.25", r.Balancer, r.SlowShare)
		}
	}
	t.Logf("\n%s", tailMarkdown(rows))
	tailNoGoroutinesLeft(t, before)

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
			if err.Error() != "EOF" {
				t.Fatalf("the SVG is not well-formed XML: %v", err)
			}
			break
		}
	}
}

// tailNoGoroutinesLeft waits until no more goroutines run than before.
func tailNoGoroutinesLeft(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("got %d goroutines, want at most %d as before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWriteTailResults runs the real measurement and writes
// results/tail.md and results/tail.svg. It runs only when asked:
//
//	GRPCKIT_BENCH_WRITE=1 go -C bench test -run TestWriteTailResults -timeout 30m
//
// GRPCKIT_BENCH_TAIL="rate,duration,repeats" overrides the default
// "400,10s,3".
func TestWriteTailResults(t *testing.T) {
	if os.Getenv("GRPCKIT_BENCH_WRITE") == "" {
		t.Skip("set GRPCKIT_BENCH_WRITE=1 to run the measurement and write results/")
	}
	cfg, err := parseTailSpec(os.Getenv("GRPCKIT_BENCH_TAIL"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rows, err := runTail(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	md := tailReport(cfg, rows, time.Since(start), "GRPCKIT_BENCH_WRITE=1 go -C bench test -run TestWriteTailResults -timeout 30m")
	if err := os.MkdirAll("results", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("results", "tail.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeTailSVG(filepath.Join("results", "tail.svg"), rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", md)
}
