package main

import (
	"math"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	redirectStdLog()
	// Package initializers of the frameworks this command also measures
	// (go-zero's proc starts a signal watcher) start goroutines before
	// any test runs; they are not the test's.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// TestAllocs gates the allocations per op of bare grpc-go and each grpckit
// configuration (client and server together, as runtime.MemStats counts
// them), with grpc-go v1.85.0 and protobuf v1.36.12 as go.mod pins them:
// a change in grpckit's chains that adds an allocation fails it. Update the
// figures with a change that is meant to move them, or with a grpc-go
// upgrade (bare grpc-go's own count moves then too).
//
// Each figure is measured 5 times over 1000 ops at 1 in flight; the test
// takes the lowest and requires it within allocTolerance of the figure
// below, so that one allocation more or less per op fails it. The counts
// are not integers: what else allocates in the process meanwhile (grpc-go's
// transport goroutines, pools refilled after a GC, a metrics exemplar taken
// once a second, a stream's teardown overlapping the end of a round) adds
// 0.01 to 0.4 per op (rarely it takes 0.01 away), so the lowest of the
// rounds is the one nearest the chain's own count, and a loaded machine,
// whose slower rounds take more exemplars, moves it least. The traced
// configurations export their spans in batches of 512, whose allocations
// spread over the calls (each round starts with an empty span queue, so a
// round of 1000 calls always makes the same exports): their figures have a
// fraction, given to a tenth (rounding them to an integer would put the
// gate's edge where they sit: "everything" measures 235.48-235.58). Under
// -race the counts differ: the test then only runs the calls (CI runs it
// again without -race).
//
// Production is measured with trace sampling at 0 rather than 1%: which
// calls the 1% are is random, so the count of a run is not an integer.
// Traced calls are gated by "everything", where every call is traced.
// allocTolerance is how far the lowest round may be from its figure.
const allocTolerance = 0.45

func TestAllocs(t *testing.T) {
	want := map[string]struct{ unary, stream float64 }{
		nameBare:               {151, 36},
		nameBareDeadline:       {169, 36},
		nameBareLogged:         {171, 36},
		nameBareTraced:         {198.6, 36},
		nameOff:                {141, 24},
		nameDefault:            {161, 24},
		nameProductionUntraced: {161, 24},
		nameEverything:         {235.5, 28.1},
	}
	ops := 1000
	if raceEnabled {
		ops = 100 // only the calls run, and -race makes them slow
	}
	cfgs := grpckitConfigs()
	for i, c := range cfgs {
		if c.name == nameProduction {
			cfgs[i] = productionConfig(nameProductionUntraced, 0)
		}
	}
	for _, c := range cfgs {
		t.Run(c.name, func(t *testing.T) {
			tg, err := c.start()
			if err != nil {
				t.Fatal(err)
			}
			defer tg.close()
			if err := warm(tg, 300); err != nil {
				t.Fatal(err)
			}
			w, ok := want[c.name]
			if !ok {
				t.Fatalf("no allocation figures for %q", c.name)
			}
			for _, tc := range []struct {
				sc   scenario
				want float64
			}{{scenario{1, false}, w.unary}, {scenario{1, true}, w.stream}} {
				var runs []float64
				for range 5 {
					s := tg.round(tc.sc, 0, ops)
					if s.errs > 0 {
						t.Fatalf("%s: %d of %d ops failed", tc.sc.kind(), s.errs, s.ops)
					}
					runs = append(runs, float64(s.mallocs)/float64(s.ops))
				}
				low := slices.Min(runs)
				t.Logf("%s: %.3f allocs/op (lowest of %.3f), want %v ± %v", tc.sc.kind(), low, runs, tc.want, allocTolerance)
				if raceEnabled {
					continue
				}
				if math.Abs(low-tc.want) > allocTolerance {
					t.Errorf("%s: got %.2f allocs/op, want %v ± %v", tc.sc.kind(), low, tc.want, allocTolerance)
				}
			}
		})
	}
}
