package main

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/connectivity"
)

// TestScale drives every balancer through updates of 1,000 endpoints and
// checks the rows are sane: all present and measured, READY after the first
// update, SubConns bounded by grpckit's subset (100) for p2c and wrr and one
// per endpoint for the balancers that connect everything. It asserts no
// time.
func TestScale(t *testing.T) {
	const n = 1000
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rows, err := runScale([]int{n})
	if err != nil {
		t.Fatal(err)
	}
	want := scaleBalancers()
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		t.Run(r.Balancer, func(t *testing.T) {
			if r.Balancer != want[i].label {
				t.Errorf("row %d: got %q, want %q", i, r.Balancer, want[i].label)
			}
			if r.Skipped != "" || r.Endpoints != n {
				t.Fatalf("got endpoints %d, skipped %q; want %d, measured", r.Endpoints, r.Skipped, n)
			}
			if r.State != connectivity.Ready {
				t.Errorf("state after the first update: got %v, want READY", r.State)
			}
			if r.First <= 0 || r.FirstAllocs == 0 {
				t.Errorf("first update: got %v and %d allocs, want both > 0", r.First, r.FirstAllocs)
			}
			switch r.Balancer {
			case scaleGrpckitP2C, scaleGrpckitWRR:
				if r.SubConns < 1 || r.SubConns > 100 {
					t.Errorf("SubConns: got %d, want 1 to 100 (the default subset)", r.SubConns)
				}
			case scaleRoundRobin, scaleGoZeroP2C:
				if r.SubConns != n {
					t.Errorf("SubConns: got %d, want %d (one per endpoint)", r.SubConns, n)
				}
				if r.OnePercentSubConns != n/100 {
					t.Errorf("SubConns per 1%% update: got %d, want %d", r.OnePercentSubConns, n/100)
				}
			case scalePickFirst:
				if r.SubConns < 1 {
					t.Errorf("SubConns: got %d, want at least 1", r.SubConns)
				}
			}
		})
	}
	t.Logf("\n%s", scaleMarkdown(rows))
}

// TestScaleSkips checks that a balancer predicted to exceed the budget is
// skipped with the reason, not run.
func TestScaleSkips(t *testing.T) {
	rows, err := runScaleBudget([]int{200, 400}, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Endpoints == 400 && (r.Skipped == "" || !strings.Contains(r.Skipped, "predicted")) {
			t.Errorf("%s at %d: got skipped %q, want a prediction", r.Balancer, r.Endpoints, r.Skipped)
		}
	}
	if md := scaleMarkdown(rows); !strings.Contains(md, "skipped") {
		t.Errorf("markdown: got no skipped row:\n%s", md)
	}
}
