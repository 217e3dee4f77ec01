package metrics_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit/metrics"
)

// lines returns the raw lines of ls, sorted, less the fields that are not
// ours (origin detection's |c:, |e:).
func rawLines(ls []line) []string {
	var out []string
	for _, l := range ls {
		var keep []string
		for i, f := range strings.Split(l.raw, "|") {
			if i < 2 || strings.HasPrefix(f, "#") || strings.HasPrefix(f, "@") {
				keep = append(keep, f)
			}
		}
		out = append(out, strings.Join(keep, "|"))
	}
	slices.Sort(out)
	return out
}

func TestStatsDDatagrams(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []metrics.StatsDOption
		want []string
	}{
		{"dogstatsd", nil, []string{
			"app.latency:0.25|h|#op:sum",
			"app.latency:2|h|#op:sum",
			"app.orders_total:1|c|#kind:a_b_c_d_e",
			"app.orders_total:3|c|#kind:sum",
			"app.queue:4|g|#q:x:y",
		}},
		{"plain", []metrics.StatsDOption{metrics.WithPlainStatsD()}, []string{
			"app.latency.sum:0.250000|ms",
			"app.latency.sum:2.000000|ms",
			"app.orders_total.a_b_c_d_e:1|c",
			"app.orders_total.sum:3|c",
			"app.queue.x_y:4|g",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lis := listenUDP(t)
			p, err := metrics.NewStatsD(lis.LocalAddr().String(),
				append(tc.opts, metrics.WithPrefix("app"), metrics.WithRuntime(0))...)
			if err != nil {
				t.Fatal(err)
			}
			orders, err := p.Counter("orders_total", "Orders.", "kind")
			if err != nil {
				t.Fatal(err)
			}
			queue, err := p.Gauge("queue", "Queue.", "q")
			if err != nil {
				t.Fatal(err)
			}
			lat, err := p.Histogram("latency", "Latency.", nil, "op")
			if err != nil {
				t.Fatal(err)
			}
			sum := orders.With("sum")
			// Fractions are carried: 1.5 + 0.5 + 1 = 3.
			sum.Add(1.5)
			sum.Add(0.5)
			sum.Inc()
			orders.With("a|b,c#d\ne").Inc() // separators of the protocol
			q := queue.With("x:y")
			q.Set(1)
			q.Add(3)
			lat.With("sum").Observe(0.25)
			lat.With("sum").Observe(2)
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("second Close: got %v, want nil", err)
			}
			sum.Inc() // after Close: dropped, no panic
			if got := rawLines(receive(t, lis)); !slices.Equal(got, tc.want) {
				t.Errorf("got lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestStatsDRuntime(t *testing.T) {
	lis := listenUDP(t)
	p, err := metrics.NewStatsD(lis.LocalAddr().String(), metrics.WithRuntime(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// The gauges are sent at once, then every 20ms; Close sends what the
	// client holds.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, l := range receive(t, lis) {
		if l.typ == "g" {
			seen[l.name] = l.value
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_memstats_sys_bytes", "go_gc_cycles_total"} {
		if _, ok := seen[name]; !ok {
			t.Errorf("runtime gauge %s: not received (got %v)", name, seen)
		}
	}
	if seen["go_goroutines"] < 1 {
		t.Errorf("go_goroutines = %v, want at least 1", seen["go_goroutines"])
	}
}

func TestStatsDOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		opts []metrics.StatsDOption
	}{
		{"empty address", "", nil},
		{"bad prefix", "127.0.0.1:8125", []metrics.StatsDOption{metrics.WithPrefix("a|b")}},
		{"empty prefix", "127.0.0.1:8125", []metrics.StatsDOption{metrics.WithPrefix("")}},
		{"zero flush", "127.0.0.1:8125", []metrics.StatsDOption{metrics.WithFlushInterval(0)}},
		{"negative runtime", "127.0.0.1:8125", []metrics.StatsDOption{metrics.WithRuntime(-time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := metrics.NewStatsD(tc.addr, tc.opts...)
			if err == nil {
				_ = p.Close()
				t.Fatal("got nil error, want one")
			}
			if !strings.HasPrefix(err.Error(), "metrics: ") {
				t.Errorf("error %q: want prefix \"metrics: \"", err)
			}
		})
	}
}
