package metrics_test

import (
	"expvar"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grpckit/grpckit/metrics"
)

func TestInvalid(t *testing.T) {
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p, _ := b.open(t, fmt.Sprintf("invalid%d_", i))
			for _, tc := range []struct {
				name   string
				create func() error
			}{
				{"name with a space", func() error { _, err := p.Counter("a b", "h"); return err }},
				{"name with a dot", func() error { _, err := p.Counter("a.b", "h"); return err }},
				{"name with a dash", func() error { _, err := p.Gauge("a-b", "h"); return err }},
				{"label with a dash", func() error { _, err := p.Counter("c", "h", "a-b"); return err }},
				{"label starting with a digit", func() error { _, err := p.Gauge("g", "h", "1a"); return err }},
				{"label starting with __", func() error { _, err := p.Counter("c", "h", "__a"); return err }},
				{"duplicate label", func() error { _, err := p.Counter("c", "h", "a", "a"); return err }},
				{"histogram label le", func() error { _, err := p.Histogram("h", "h", nil, "le"); return err }},
				{"buckets not increasing", func() error { _, err := p.Histogram("h", "h", []float64{1, 1}); return err }},
				{"infinite bucket", func() error { _, err := p.Histogram("h", "h", []float64{1, math.Inf(1)}); return err }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.create()
					if err == nil {
						t.Fatal("got nil error, want one")
					}
					if !strings.HasPrefix(err.Error(), "metrics: ") {
						t.Errorf("error %q: want prefix \"metrics: \"", err)
					}
				})
			}
		})
	}
}

func TestSameAndConflicting(t *testing.T) {
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			prefix := fmt.Sprintf("same%d_", i)
			p, read := b.open(t, prefix)
			c1, err := p.Counter("calls_total", "Calls.", "op")
			if err != nil {
				t.Fatal(err)
			}
			c2, err := p.Counter("calls_total", "Calls.", "op")
			if err != nil {
				t.Fatalf("asking again: %v", err)
			}
			if _, err := p.Counter("calls_total", "Calls.", "method"); err == nil {
				t.Error("other label names: got nil error, want one")
			}
			if _, err := p.Gauge("calls_total", "Calls."); err == nil {
				t.Error("gauge of a counter's name: got nil error, want one")
			}
			if _, err := p.Histogram("calls_total", "Calls.", nil, "op"); err == nil {
				t.Error("histogram of a counter's name: got nil error, want one")
			}
			c1.With("x").Inc()
			c2.With("x").Inc()
			if got, want := read()[key(prefix+"calls_total", "op", "x")], 2.0; got != want {
				t.Errorf("calls_total{op=x} = %v, want %v", got, want)
			}
		})
	}
}

func TestMisuse(t *testing.T) {
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p, _ := b.open(t, fmt.Sprintf("misuse%d_", i))
			c, err := p.Counter("c_total", "C.", "a", "b")
			if err != nil {
				t.Fatal(err)
			}
			mustPanic(t, "With with one value of two", func() { c.With("x") })
			mustPanic(t, "negative Add", func() { c.With("x", "y").Add(-1) })
			g, err := p.Gauge("g", "G.")
			if err != nil {
				t.Fatal(err)
			}
			mustPanic(t, "With with a value of none", func() { g.With("x") })
		})
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Errorf("%s: got no panic, want one", what)
		} else if !strings.Contains(fmt.Sprint(r), "counter cannot decrease") && !strings.HasPrefix(fmt.Sprint(r), "metrics: ") {
			t.Errorf("%s: panic %q, want a \"metrics: \" message", what, r)
		}
	}()
	f()
}

func TestNilAndNames(t *testing.T) {
	for name, p := range map[string]metrics.Provider{
		"Prometheus(nil)": metrics.Prometheus(nil),
		"OTel(nil)":       metrics.OTel(nil),
	} {
		if _, err := p.Counter("c", "h"); err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
			t.Errorf("%s.Counter: got error %v, want a \"metrics: \" one", name, err)
		}
	}
	for _, name := range []string{"", "1a", "_a", strings.Repeat("a", 256)} {
		if _, err := metrics.Prometheus(prometheus.NewRegistry()).Counter(name, "h"); err == nil {
			t.Errorf("Counter(%q): got nil error, want one", name)
		}
	}
	if err := metrics.OTelRuntime(nil); err == nil {
		t.Error("OTelRuntime(nil): got nil error, want one")
	}
}

// A name another package published in expvar is an error, not expvar's
// panic.
func TestExpvarForeignName(t *testing.T) {
	expvar.NewInt("foreign_total")
	if _, err := metrics.Expvar("").Counter("foreign_total", "h"); err == nil {
		t.Error("got nil error, want one")
	}
}

// Another kind of collector registered under the name is an error.
func TestPrometheusForeignCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x_total", Help: "X."}, []string{"a"}))
	if _, err := metrics.Prometheus(reg).Counter("x_total", "X.", "a"); err == nil {
		t.Error("got nil error, want one")
	}
	g, err := metrics.Prometheus(reg).Gauge("x_total", "X.", "a")
	if err != nil {
		t.Fatalf("gauge of the registered gauge: %v", err)
	}
	g.With("v").Set(1)
}

func TestExpvarJSON(t *testing.T) {
	p := metrics.Expvar("json_")
	c, _ := p.Counter("c", "C.", "a", "b")
	c.With("x", "y").Add(1.5)
	c.With(`q"`, "").Inc()
	g, _ := p.Gauge("g", "G.")
	g.With().Set(0)
	g.With().Add(1e308)
	g.With().Add(1e308) // +Inf
	h, _ := p.Histogram("h", "H.", []float64{1})
	h.With().Observe(2)
	for name, want := range map[string]string{
		"json_c": `{"a=x,b=y":1.5,"a=q\",b=":1}`,
		"json_g": `{"":"+Inf"}`,
		"json_h": `{"":{"count":1,"sum":2,"buckets":{"1":0,"+Inf":1}}}`,
	} {
		if got := expvar.Get(name).String(); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
}

func TestMulti(t *testing.T) {
	pp, readProm := openPrometheus(t, "multi_")
	sp, readStatsD := openStatsD(t, "multi_")
	m := metrics.Multi(pp, sp)
	c, err := m.Counter("calls_total", "Calls.", "op")
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.Gauge("level", "Level.")
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.Histogram("size", "Size.", []float64{10})
	if err != nil {
		t.Fatal(err)
	}
	c.With("x").Add(2)
	g.With().Set(4)
	h.With().Observe(3)
	want := series{
		key("multi_calls_total", "op", "x"): 2,
		key("multi_level"):                  4,
		key("multi_size_count"):             1,
		key("multi_size_sum"):               3,
	}
	for name, got := range map[string]series{"prometheus": readProm(), "statsd": readStatsD()} {
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s = %v, want %v", name, k, got[k], w)
			}
		}
	}
	if _, err := metrics.Multi(pp, sp).Counter("calls_total", "Calls.", "method"); err == nil {
		t.Error("conflicting labels: got nil error, want one")
	}
	mustPanic(t, "negative Add", func() { c.With("x").Add(-1) })
}

// Children are used from many goroutines at once.
func TestConcurrent(t *testing.T) {
	const goroutines, n = 4, 500
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			prefix := fmt.Sprintf("conc%d_", i)
			p, read := b.open(t, prefix)
			c, err := p.Counter("c_total", "C.", "op")
			if err != nil {
				t.Fatal(err)
			}
			g, err := p.Gauge("g", "G.")
			if err != nil {
				t.Fatal(err)
			}
			h, err := p.Histogram("h", "H.", nil)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range n {
						c.With("x").Add(0.5) // looked up each time, fractions carried
						g.With().Add(1)
						h.With().Observe(1)
					}
				})
			}
			wg.Wait()
			got := read()
			for k, w := range map[string]float64{
				key(prefix+"c_total", "op", "x"): goroutines * n / 2,
				key(prefix + "g"):                goroutines * n,
				key(prefix + "h_count"):          goroutines * n,
			} {
				if got[k] != w {
					t.Errorf("%s = %v, want %v", k, got[k], w)
				}
			}
		})
	}
}

func TestPrometheusInvalidUTF8(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := metrics.Prometheus(reg).Counter("u_total", "U.", "v")
	if err != nil {
		t.Fatal(err)
	}
	c.With("a\xffb").Inc() // would panic in client_golang
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mfs[0].GetMetric()[0].GetLabel()[0].GetValue(), "a\uFFFDb"; got != want {
		t.Errorf("label value %q, want %q", got, want)
	}
}

func TestOtherHelp(t *testing.T) {
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			p, _ := b.open(t, fmt.Sprintf("help%d_", i))
			if _, err := p.Counter("c_total", "One."); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Counter("c_total", "Two."); err == nil {
				t.Error("other help: got nil error, want one")
			}
			if _, err := p.Histogram("h", "H.", []float64{1}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Histogram("h", "H.", []float64{1}); err != nil {
				t.Errorf("same histogram again: %v", err)
			}
		})
	}
}
