package metrics_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/metrics"
)

// series are values read back from a backend, keyed
// name{label=value,...} with labels sorted; a histogram is read as
// name_count and name_sum.
type series map[string]float64

// key returns a series key.
func key(name string, labelPairs ...string) string {
	var kv []string
	for i := 0; i+1 < len(labelPairs); i += 2 {
		kv = append(kv, labelPairs[i]+"="+labelPairs[i+1])
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

// backend is a provider and the way to read what it recorded.
type backend struct {
	name string
	// open returns a provider whose metric names start with prefix, and
	// a function that reads its series (closing the provider, if it has to
	// be, first).
	open func(t testing.TB, prefix string) (p metrics.Provider, read func() series)
}

var backends = []backend{
	{"prometheus", openPrometheus},
	{"otel", openOTel},
	{"expvar", openExpvar},
	{"statsd", openStatsD},
}

// openPrometheus reads the exposition of the admin handler's /metrics,
// where a registry made as the builders make theirs is served.
func openPrometheus(t testing.TB, prefix string) (metrics.Provider, func() series) {
	reg := grpckit.NewRegistry()
	h, err := admin.New(admin.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	return prefixed{metrics.Prometheus(reg), prefix}, func() series {
		body := get(t, h, "/metrics")
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("parsing /metrics: %v\n%s", err, body)
		}
		s := series{}
		for name, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var lp []string
				for _, l := range m.GetLabel() {
					lp = append(lp, l.GetName(), l.GetValue())
				}
				switch {
				case m.Counter != nil:
					s[key(name, lp...)] = m.GetCounter().GetValue()
				case m.Gauge != nil:
					s[key(name, lp...)] = m.GetGauge().GetValue()
				case m.Histogram != nil:
					s[key(name+"_count", lp...)] = float64(m.GetHistogram().GetSampleCount())
					s[key(name+"_sum", lp...)] = m.GetHistogram().GetSampleSum()
					for _, b := range m.GetHistogram().GetBucket() {
						s[key(name+"_bucket", append(lp, "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))...)] =
							float64(b.GetCumulativeCount())
					}
				}
			}
		}
		return s
	}
}

// openOTel collects a manual reader of the SDK.
func openOTel(t testing.TB, prefix string) (metrics.Provider, func() series) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(t.Context()) })
	if err := metrics.OTelRuntime(mp); err != nil {
		t.Fatal(err)
	}
	return prefixed{metrics.OTel(mp), prefix}, func() series {
		var rm metricdata.ResourceMetrics
		if err := r.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		s := series{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Sum[float64]:
					for _, dp := range d.DataPoints {
						s[key(m.Name, attrPairs(dp.Attributes)...)] = dp.Value
					}
				case metricdata.Sum[int64]:
					for _, dp := range d.DataPoints {
						s[key(m.Name, attrPairs(dp.Attributes)...)] = float64(dp.Value)
					}
				case metricdata.Gauge[float64]:
					for _, dp := range d.DataPoints {
						s[key(m.Name, attrPairs(dp.Attributes)...)] = dp.Value
					}
				case metricdata.Gauge[int64]:
					for _, dp := range d.DataPoints {
						s[key(m.Name, attrPairs(dp.Attributes)...)] = float64(dp.Value)
					}
				case metricdata.Histogram[float64]:
					for _, dp := range d.DataPoints {
						lp := attrPairs(dp.Attributes)
						s[key(m.Name+"_count", lp...)] = float64(dp.Count)
						s[key(m.Name+"_sum", lp...)] = dp.Sum
						var cum uint64
						for i, b := range dp.Bounds {
							cum += dp.BucketCounts[i]
							s[key(m.Name+"_bucket", append(lp, "le", strconv.FormatFloat(b, 'g', -1, 64))...)] = float64(cum)
						}
					}
				}
			}
		}
		return s
	}
}

func attrPairs(set attribute.Set) []string {
	var lp []string
	for _, kv := range set.ToSlice() {
		lp = append(lp, string(kv.Key), kv.Value.String())
	}
	return lp
}

// openExpvar reads the JSON of the admin handler's /debug/vars.
func openExpvar(t testing.TB, prefix string) (metrics.Provider, func() series) {
	h, err := admin.New()
	if err != nil {
		t.Fatal(err)
	}
	// expvar is global: the prefix of the test keeps its names apart.
	return metrics.Expvar(prefix), func() series {
		var vars map[string]json.RawMessage
		body := get(t, h, "/debug/vars")
		if err := json.Unmarshal([]byte(body), &vars); err != nil {
			t.Fatalf("parsing /debug/vars: %v\n%s", err, body)
		}
		if _, ok := vars["cmdline"]; ok {
			t.Errorf("/debug/vars serves cmdline")
		}
		if _, ok := vars["memstats"]; !ok {
			t.Errorf("/debug/vars lacks memstats")
		}
		s := series{}
		for name, raw := range vars {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			var members map[string]json.RawMessage
			if err := json.Unmarshal(raw, &members); err != nil {
				t.Fatalf("%s: %v: %s", name, err, raw)
			}
			for k, v := range members {
				var lp []string
				if k != "" {
					for _, pair := range strings.Split(k, ",") {
						l, v, _ := strings.Cut(pair, "=")
						lp = append(lp, l, v)
					}
				}
				var h struct {
					Count   *float64
					Sum     float64
					Buckets map[string]float64
				}
				if err := json.Unmarshal(v, &h); err == nil && h.Count != nil {
					s[key(name+"_count", lp...)] = *h.Count
					s[key(name+"_sum", lp...)] = h.Sum
					for le, n := range h.Buckets {
						if le != "+Inf" {
							s[key(name+"_bucket", append(lp, "le", le)...)] = n
						}
					}
					continue
				}
				var f float64
				if err := json.Unmarshal(v, &f); err != nil {
					t.Fatalf("%s[%q]: %v: %s", name, k, err, v)
				}
				s[key(name, lp...)] = f
			}
		}
		return s
	}
}

// openStatsD receives the datagrams on a UDP listener; reading closes the
// provider, which sends what it holds.
func openStatsD(t testing.TB, prefix string) (metrics.Provider, func() series) {
	lis := listenUDP(t)
	p, err := metrics.NewStatsD(lis.LocalAddr().String(), metrics.WithRuntime(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return prefixed{p, prefix}, func() series {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		s := series{}
		gauges := map[string]bool{}
		for _, l := range receive(t, lis) {
			var lp []string
			for _, tag := range l.tags {
				k, v, _ := strings.Cut(tag, ":")
				lp = append(lp, k, v)
			}
			switch l.typ {
			case "c":
				s[key(l.name, lp...)] += l.value
			case "g":
				s[key(l.name, lp...)] = l.value
				gauges[key(l.name, lp...)] = true
			case "h", "ms", "d":
				s[key(l.name+"_count", lp...)]++
				s[key(l.name+"_sum", lp...)] += l.value
			default:
				t.Errorf("datagram line %q: unknown type", l.raw)
			}
		}
		return s
	}
}

// prefixed puts a prefix before the names of a provider's metrics.
type prefixed struct {
	metrics.Provider
	prefix string
}

func (p prefixed) Counter(name, help string, labels ...string) (metrics.Counter, error) {
	return p.Provider.Counter(p.prefix+name, help, labels...)
}

func (p prefixed) Gauge(name, help string, labels ...string) (metrics.Gauge, error) {
	return p.Provider.Gauge(p.prefix+name, help, labels...)
}

func (p prefixed) Histogram(name, help string, buckets []float64, labels ...string) (metrics.Histogram, error) {
	return p.Provider.Histogram(p.prefix+name, help, buckets, labels...)
}

// get returns the body of a GET of path on h.
func get(t testing.TB, h http.Handler, path string) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v\n%s", path, resp.StatusCode, err, b)
	}
	return string(b)
}

func listenUDP(t testing.TB) net.PacketConn {
	t.Helper()
	lis, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	return lis
}

// line is one StatsD line: name:value|type|@rate|#tags|...
type line struct {
	raw, name, typ string
	value          float64
	tags           []string
}

// receive returns the lines of the datagrams on lis until none has come
// for 300ms.
func receive(t testing.TB, lis net.PacketConn) []line {
	t.Helper()
	var out []line
	buf := make([]byte, 65536)
	for {
		_ = lis.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := lis.ReadFrom(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return out
			}
			t.Fatal(err)
		}
		for _, raw := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
			l, err := parseLine(raw)
			if err != nil {
				t.Fatalf("datagram line %q: %v", raw, err)
			}
			out = append(out, l)
		}
	}
}

func parseLine(raw string) (line, error) {
	l := line{raw: raw}
	fields := strings.Split(raw, "|")
	if len(fields) < 2 {
		return l, fmt.Errorf("want name:value|type")
	}
	name, value, ok := strings.Cut(fields[0], ":")
	if !ok || name == "" {
		return l, fmt.Errorf("want name:value")
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return l, err
	}
	l.name, l.value, l.typ = name, v, fields[1]
	for _, f := range fields[2:] {
		if tags, ok := strings.CutPrefix(f, "#"); ok {
			l.tags = strings.Split(tags, ",")
		}
		// @rate, c:container, e:env, T:timestamp: not ours.
	}
	return l, nil
}

// TestBackends records the same metrics on every backend and reads them
// back in the backend's own format.
func TestBackends(t *testing.T) {
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			prefix := fmt.Sprintf("test%d_", i)
			p, read := b.open(t, prefix)
			orders, err := p.Counter("orders_total", "Orders, by kind.", "kind")
			if err != nil {
				t.Fatal(err)
			}
			depth, err := p.Gauge("queue_depth", "Queued orders.", "queue")
			if err != nil {
				t.Fatal(err)
			}
			lat, err := p.Histogram("latency_seconds", "Order latency.", []float64{0.1, 1}, "kind")
			if err != nil {
				t.Fatal(err)
			}
			plain, err := p.Counter("ticks_total", "Ticks.")
			if err != nil {
				t.Fatal(err)
			}
			sum := orders.With("sum")
			sum.Inc()
			sum.Add(2)
			orders.With("concat").Inc()
			a := depth.With("a")
			a.Set(5)
			a.Add(-2)
			depth.With("b").Add(7)
			l := lat.With("sum")
			l.Observe(0.05)
			l.Observe(0.5)
			l.Observe(3)
			plain.With().Inc()

			got := read()
			want := series{
				key(prefix+"orders_total", "kind", "sum"):          3,
				key(prefix+"orders_total", "kind", "concat"):       1,
				key(prefix+"queue_depth", "queue", "a"):            3,
				key(prefix+"queue_depth", "queue", "b"):            7,
				key(prefix+"latency_seconds_count", "kind", "sum"): 3,
				key(prefix+"latency_seconds_sum", "kind", "sum"):   3.55,
				key(prefix + "ticks_total"):                        1,
			}
			if b.name != "statsd" { // StatsD servers make their own buckets
				want[key(prefix+"latency_seconds_bucket", "kind", "sum", "le", "0.1")] = 1
				want[key(prefix+"latency_seconds_bucket", "kind", "sum", "le", "1")] = 2
			}
			for k, w := range want {
				if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-9 {
					t.Errorf("%s = %v (present: %v), want %v", k, g, ok, w)
				}
			}
			for k := range got {
				if strings.HasPrefix(k, prefix) {
					if _, ok := want[k]; !ok && !strings.Contains(k, "_bucket{") {
						t.Errorf("unexpected series %s = %v", k, got[k])
					}
				}
			}
			if t.Failed() {
				t.Logf("got series:\n%s", strings.Join(slices.Sorted(maps.Keys(got)), "\n"))
			}
			// The Go runtime's series are there from the first line.
			runtimeSeries := map[string]string{"prometheus": "go_goroutines{}", "otel": "go.goroutine.count{}"}
			if k, ok := runtimeSeries[b.name]; ok && got[k] < 1 {
				t.Errorf("%s = %v, want at least 1", k, got[k])
			}
		})
	}
}
