// Command bench compares the cost of grpckit's configurations with bare
// grpc-go, Kratos, go-zero and go-grpc-middleware in one process, on TCP
// 127.0.0.1, as the project's benchmarking rules ask: configurations
// interleaved in rounds, CPU from getrusage, allocations from
// runtime.MemStats, every figure also as a ratio to bare grpc-go measured
// in the same round. It writes its tables and charts to -out (see
// README.md).
//
//	go -C bench run .          # full run, about 7 minutes on 2 cores
//	go -C bench run . -quick   # a few seconds, to try it
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// options are the command line's settings, passed to every section.
type options struct {
	rounds int
	round  time.Duration
	out    string
	quick  bool
	// sections to run; tail and scale are their specs.
	sections string
	tail     string
	scale    string
	// command is the command line, for the results files.
	command string
	log     io.Writer // progress
}

func main() {
	var o options
	flag.StringVar(&o.sections, "sections", "percall,tail,scale", "sections to run, comma-separated")
	flag.StringVar(&o.tail, "tail", "400,8s,3", "tail latency: calls/s, measured time per balancer and run, runs")
	flag.StringVar(&o.scale, "scale", "1000,10000,100000", "scale: endpoint counts")
	flag.IntVar(&o.rounds, "rounds", 30, "interleaved rounds per scenario (each configuration runs once per round)")
	flag.DurationVar(&o.round, "round", 150*time.Millisecond, "duration of one configuration's turn in a round")
	flag.StringVar(&o.out, "out", "results", "directory of the results")
	flag.BoolVar(&o.quick, "quick", false, "a few short rounds, to try the command (overrides -rounds, -round, -tail and -scale)")
	flag.Parse()
	if o.quick {
		o.rounds, o.round = 4, 50*time.Millisecond
		o.tail, o.scale = "200,1s,1", "1000"
	}
	o.command = strings.TrimSpace("go -C bench run . " + strings.Join(os.Args[1:], " "))
	o.log = os.Stderr
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// section is one part of the results, written to results/<file> and
// listed in results/README.md.
type section struct {
	file, title string
}

func run(o options) error {
	redirectStdLog()
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	fmt.Printf("machine: %s\ncommand: %s\n\n", machine(), o.command)
	var sections []section

	want := map[string]bool{}
	for _, name := range strings.Split(o.sections, ",") {
		name = strings.TrimSpace(name)
		if name != "percall" && name != "tail" && name != "scale" {
			return fmt.Errorf("-sections: unknown section %q (want percall, tail or scale)", name)
		}
		want[name] = true
	}
	if want["percall"] {
		s, err := runPerCall(o)
		if err != nil {
			return err
		}
		sections = append(sections, s...)
	}
	if want["tail"] {
		s, err := runTailSection(o)
		if err != nil {
			return err
		}
		sections = append(sections, s...)
	}
	if want["scale"] {
		s, err := runScaleSection(o)
		if err != nil {
			return err
		}
		sections = append(sections, s...)
	}

	var index strings.Builder
	for _, s := range sections {
		fmt.Fprintf(&index, "- [%s](%s)\n", s.title, s.file)
	}
	return writeMarkdown(filepath.Join(o.out, "README.md"), "grpckit benchmark results", o.command, index.String())
}

// runTailSection measures tail latency per balancer and writes tail.md
// and tail.svg.
func runTailSection(o options) ([]section, error) {
	cfg, err := parseTailSpec(o.tail)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.log, "tail latency: %s\n", tailSpecString(cfg))
	start := time.Now()
	rows, err := runTail(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	fmt.Println(tailMarkdown(rows))
	if err := os.WriteFile(filepath.Join(o.out, "tail.md"), []byte(tailReport(cfg, rows, time.Since(start), o.command)), 0o644); err != nil {
		return nil, err
	}
	if err := writeTailSVG(filepath.Join(o.out, "tail.svg"), rows); err != nil {
		return nil, err
	}
	return []section{{file: "tail.md", title: "Tail latency per balancer with one slow backend of four"}}, nil
}

// runScaleSection measures balancer updates at o.scale endpoints and
// writes scale.md.
func runScaleSection(o options) ([]section, error) {
	var sizes []int
	for _, f := range strings.Split(o.scale, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-scale %q: want endpoint counts", o.scale)
		}
		sizes = append(sizes, n)
	}
	fmt.Fprintf(o.log, "scale: %v endpoints\n", sizes)
	start := time.Now()
	rows, err := runScale(sizes)
	if err != nil {
		return nil, err
	}
	fmt.Println(scaleMarkdown(rows))
	if err := os.WriteFile(filepath.Join(o.out, "scale.md"), []byte(scaleReport(rows, time.Since(start), o.command)), 0o644); err != nil {
		return nil, err
	}
	return []section{{file: "scale.md", title: fmt.Sprintf("Balancer updates at %s endpoints", strings.ReplaceAll(o.scale, ",", ", "))}}, nil
}

// runPerCall measures the per-call cost of every configuration and writes
// percall.md, percall.svg and stream.svg.
func runPerCall(o options) ([]section, error) {
	cfgs := allConfigs()
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	for _, c := range cfgs {
		t, err := c.start()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		targets = append(targets, t)
		// Connect and fill pools.
		if err := warm(t, 500); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(o.log, "per call: %d configurations, %d rounds of %v per scenario\n", len(targets), o.rounds, o.round)
	var all [][]result
	for _, sc := range scenarios {
		all = append(all, measure(o.log, targets, sc, o.rounds, o.round))
	}

	tb := table{header: []string{"config", "in flight", "kind", "CPU/op", "ratio to bare, median [IQR]", "wall/op", "allocs/op", "B/op", "log B/op", "errors"}}
	for _, rs := range all {
		for _, r := range rs {
			tb.add(r.name, fmt.Sprint(r.sc.inflight), r.sc.kind(),
				fmt.Sprintf("%.1f µs", float64(r.cpu)/1e3),
				fmt.Sprintf("%.2f [%.2f–%.2f]", r.ratio, r.lo, r.hi),
				fmt.Sprintf("%.1f µs", float64(r.wall)/1e3),
				fmt.Sprintf("%.1f", r.allocs), fmt.Sprintf("%.0f", r.bytes), fmt.Sprintf("%.0f", r.logBytes),
				fmt.Sprintf("%d / %d", r.errs, r.ops))
		}
	}
	fmt.Println(tb.text())

	body := fmt.Sprintf(`%d rounds of %v per configuration and scenario; in each round every configuration runs in turn (the first one rotating), so all share the machine's drift. An op is a unary call, or one message each way on an open bidi stream (streams are opened before and closed after the measured window). 32-byte payload, TCP on 127.0.0.1, client and server in this process.

- CPU/op: user+sys CPU of the whole process (client and server, getrusage) per op, median over rounds.
- ratio to bare: median over rounds of (CPU/op ÷ bare grpc-go's CPU/op in the same round), with the interquartile range of those per-round ratios.
- wall/op: round duration ÷ ops, median (latency at 1 in flight, inverse throughput at 8).
- allocs/op, B/op: runtime.MemStats Mallocs and TotalAlloc deltas per op, median over rounds (exact counts; background goroutines of the process count too).
- log B/op: bytes written by every logger (all point at one counting writer) per op, over all rounds.
- errors: failed ops / ops, over all rounds.

`, o.rounds, o.round)
	body += tb.markdown()
	body += "\nCharts: [percall.svg](percall.svg) (unary), [stream.svg](stream.svg) (stream messages). See ../README.md for what each configuration is.\n"
	if err := writeMarkdown(filepath.Join(o.out, "percall.md"), "Per-call cost", o.command, body); err != nil {
		return nil, err
	}
	groups := func(stream bool) []barGroup {
		var gs []barGroup
		for _, rs := range all {
			if rs[0].sc.stream != stream {
				continue
			}
			g := barGroup{title: fmt.Sprintf("%d in flight", rs[0].sc.inflight)}
			for _, r := range rs {
				g.bars = append(g.bars, bar{label: r.name, value: r.ratio, lo: r.lo, hi: r.hi, hasRange: true})
			}
			gs = append(gs, g)
		}
		return gs
	}
	if err := writeBarSVGRef(filepath.Join(o.out, "percall.svg"), "Unary call: CPU per call ÷ bare grpc-go (median, IQR)", groups(false), 1); err != nil {
		return nil, err
	}
	if err := writeBarSVGRef(filepath.Join(o.out, "stream.svg"), "Bidi stream message: CPU per message ÷ bare grpc-go (median, IQR)", groups(true), 1); err != nil {
		return nil, err
	}
	return []section{{file: "percall.md", title: "Per-call cost (CPU, allocations, logs; unary and stream)"}}, nil
}
