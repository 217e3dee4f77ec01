package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// parseTailSpec parses -tail's "rate,duration,repeats" (e.g. "400,8s,3").
func parseTailSpec(s string) (TailConfig, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return TailConfig{}, fmt.Errorf("bench: tail spec %q: want rate,duration,repeats", s)
	}
	rate, err := strconv.ParseFloat(parts[0], 64)
	if err != nil {
		return TailConfig{}, fmt.Errorf("bench: tail spec %q: rate: %w", s, err)
	}
	d, err := time.ParseDuration(parts[1])
	if err != nil {
		return TailConfig{}, fmt.Errorf("bench: tail spec %q: duration: %w", s, err)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		return TailConfig{}, fmt.Errorf("bench: tail spec %q: repeats: %w", s, err)
	}
	return TailConfig{Rate: rate, Duration: d, Repeats: n}, nil
}

// benchMachineInfo describes the machine: Go version, CPU model, CPUs.
func benchMachineInfo() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	return fmt.Sprintf("%s %s/%s, %s, nproc %d, GOMAXPROCS %d", runtime.Version(), runtime.GOOS, runtime.GOARCH, model, runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// tailReport is results/tail.md: the table and how it was made.
func tailReport(cfg TailConfig, rows []TailRow, took time.Duration, command string) string {
	var sb strings.Builder
	sb.WriteString("# Tail latency per balancer, one slow backend\n\n")
	fmt.Fprintf(&sb, "Four echo backends (plain `grpc.NewServer`, echo service of `proto/grpckit/echo/v1`, 32-byte message) on 127.0.0.1; "+
		"service time is a sleep of %v on three of them and %v (10× slower) on the fourth, so the CPU is never the bottleneck "+
		"and a backend does not slow down with its load. Open-loop Poisson load at %.0f calls/s, each call on its own goroutine "+
		"with a %v deadline; latency is measured from the call's *intended* send time (no coordinated omission). "+
		"Each run: fresh backends and client, wait for READY, %v of unmeasured warm-up load, %v measured. "+
		"%d rounds; each round runs every balancer once, one at a time, in an order rotated each round, on the same Poisson arrival "+
		"schedule (one seed per round), with the slow backend moved to the next of the four addresses. p50/p99/p99.9 are the **medians over the rounds** of each run's percentile; "+
		"calls and errors are totals; the slow share is the median over the rounds of the share of a run's calls served by the slow backend "+
		"(fair share: 25%%).\n\n",
		tailFast, tailSlow, cfg.Rate, tailCallTimeout, cfg.warmup(), cfg.Duration, cfg.Repeats)
	sb.WriteString("Clients:\n\n")
	sb.WriteString("- grpckit p2c / wrr, grpc-go round_robin / least_request (`least_request_experimental`, choiceCount 2): bare `grpc.NewClient`, " +
		"a manual resolver handing all four addresses as endpoints, the policy in the default service config.\n")
	sb.WriteString("- Kratos v2.8.3: `transport/grpc.DialInsecure` with a `discovery:///` endpoint and a static `registry.Discovery`, " +
		"`selector.SetGlobalSelector(p2c.NewBuilder())` (Kratos's gRPC balancer reads the global selector), Kratos's defaults otherwise " +
		"(its client interceptor, 2 s timeout, health checking on: the backends serve grpc.health.v1).\n")
	sb.WriteString("- go-zero v1.10.3: `zrpc.NewClient` with `Endpoints` (its direct resolver) and its default balancer `p2c_ewma`; " +
		"client middlewares off (the configuration is a literal, not loaded with defaults).\n\n")
	sb.WriteString(tailMarkdown(rows))
	sb.WriteString(tailReading)
	fmt.Fprintf(&sb, "\n![latency per balancer](tail.svg)\n\n")
	fmt.Fprintf(&sb, "Command: `%s` (%s; %.0f s in all).\n\n", command, tailSpecString(cfg), took.Seconds())
	fmt.Fprintf(&sb, "Machine: %s. Date: %s. Other jobs shared the machine; compare rows of this run with each other, not with other runs.\n",
		benchMachineInfo(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	return sb.String()
}

func tailSpecString(cfg TailConfig) string {
	return fmt.Sprintf("-tail %g,%v,%d", cfg.Rate, cfg.Duration, cfg.Repeats)
}

// tailReading is how to read the table.
const tailReading = "\nReading it: the p50 sits above the fast backends' sleep by a gRPC round trip on loopback and the scheduling of a 2-core machine. " +
	"With sleep-based service times nothing queues, so a balancer's p99 is the slow backend's latency as soon as it sends it more than 1% of the calls, " +
	"and its p99.9 as soon as it sends it more than 0.1%. The last column counts, per run, the calls slower than twice the slow backend's service time, " +
	"how many of them a fast backend served, and the span of their intended send times: several within a few tens of milliseconds, " +
	"on fast backends too, is a stall of the machine (other jobs share it), not the balancer.\n"
