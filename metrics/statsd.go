package metrics

import (
	"fmt"
	"math"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
)

// StatsD is a provider that sends its metrics to a StatsD or DogStatsD
// server (the Datadog agent) over UDP with Datadog's client,
// github.com/DataDog/datadog-go/v5/statsd: measurements are aggregated
// by the client for 2s (counters summed, gauges' last value kept),
// buffered, and sent from the client's goroutines without blocking the
// caller; when the server is away, datagrams are lost, not queued. Close
// sends what is left and stops the goroutines.
//
// Labels become DogStatsD tags, "label:value"; with [WithPlainStatsD] they
// are appended to the name instead. Counters are integers in StatsD: the
// fractional part of Add's deltas is carried until it makes a whole unit.
// Buckets and help texts are not sent: a StatsD server aggregates
// histograms itself.
//
// Datadog's client adds the tags env, service and version from DD_ENV,
// DD_SERVICE and DD_VERSION, and fields from DD_EXTERNAL_ENV and
// DD_CARDINALITY: leave them unset for a plain StatsD server. Its own
// telemetry (datadog.dogstatsd.client.*) is off.
type StatsD struct {
	client *statsd.Client
	cfg    statsdConfig
	reg    registry

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// StatsDOption configures [NewStatsD].
type StatsDOption func(*statsdConfig)

type statsdConfig struct {
	plain   bool
	prefix  string
	flush   time.Duration
	runtime time.Duration
	errs    []error
}

// WithPlainStatsD speaks plain StatsD instead of DogStatsD: no tags, the
// label values are appended to the name ("orders_total.sum" for label
// value "sum"; characters other than letters, digits, '_' and '-' become
// '_'), histograms are sent as timers ("|ms", the value as it is
// observed, with six decimals), and the DogStatsD extensions (origin detection) are off.
// Default: DogStatsD.
func WithPlainStatsD() StatsDOption { return func(c *statsdConfig) { c.plain = true } }

// WithPrefix puts prefix and a dot before every name ("myapp" makes
// "myapp.orders_total"); it is made of letters, digits, '_', '-' and '.'.
// Default: none.
func WithPrefix(prefix string) StatsDOption {
	return func(c *statsdConfig) {
		if prefix == "" || strings.Trim(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != "" {
			c.errs = append(c.errs, fmt.Errorf("metrics: WithPrefix(%q): want letters, digits, '_', '-' or '.'", prefix))
			return
		}
		c.prefix = prefix
	}
}

// WithFlushInterval sets how long the client buffers datagrams before it
// sends them (a full datagram is sent at once). Default: 100ms.
func WithFlushInterval(d time.Duration) StatsDOption {
	return func(c *statsdConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("metrics: WithFlushInterval(%v): want a positive interval", d))
			return
		}
		c.flush = d
	}
}

// WithRuntime sends the Go runtime's gauges every interval, read from
// runtime/metrics without stopping the world: go_goroutines,
// go_memstats_heap_alloc_bytes (bytes of live and unswept heap objects),
// go_memstats_sys_bytes (all memory mapped by the runtime) and
// go_gc_cycles_total, named as Prometheus's Go collector names them; 0
// turns them off. Default: every 10s.
func WithRuntime(interval time.Duration) StatsDOption {
	return func(c *statsdConfig) {
		if interval < 0 {
			c.errs = append(c.errs, fmt.Errorf("metrics: WithRuntime(%v): want a positive interval, or 0 for none", interval))
			return
		}
		c.runtime = interval
	}
}

// NewStatsD returns a provider sending to addr, a UDP "host:port" (the
// Datadog agent's is "127.0.0.1:8125"). It fails on an invalid option or
// address; a server that is not listening is no error. Close it.
func NewStatsD(addr string, opts ...StatsDOption) (*StatsD, error) {
	c := statsdConfig{flush: 100 * time.Millisecond, runtime: 10 * time.Second}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if len(c.errs) > 0 {
		return nil, c.errs[0]
	}
	if addr == "" {
		return nil, fmt.Errorf("metrics: NewStatsD: empty address")
	}
	copts := []statsd.Option{statsd.WithoutTelemetry(), statsd.WithBufferFlushInterval(c.flush)}
	if c.prefix != "" {
		copts = append(copts, statsd.WithNamespace(c.prefix))
	}
	if c.plain {
		copts = append(copts, statsd.WithoutOriginDetection())
	}
	client, err := statsd.New(addr, copts...)
	if err != nil {
		return nil, fmt.Errorf("metrics: NewStatsD(%q): %w", addr, err)
	}
	s := &StatsD{client: client, cfg: c, stop: make(chan struct{}), done: make(chan struct{})}
	if c.runtime > 0 {
		go s.sendRuntime()
	} else {
		close(s.done)
	}
	return s, nil
}

// Close stops sending the runtime gauges, sends what the client holds
// and stops its goroutines; measurements after Close are dropped. It is
// idempotent.
func (s *StatsD) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if err := s.client.Close(); err != nil {
			s.closeErr = fmt.Errorf("metrics: StatsD: %w", err)
		}
	})
	return s.closeErr
}

// sendRuntime sends the runtime gauges every s.cfg.runtime until Close.
func (s *StatsD) sendRuntime() {
	defer close(s.done)
	samples := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	names := []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_memstats_sys_bytes", "go_gc_cycles_total"}
	t := time.NewTicker(s.cfg.runtime)
	defer t.Stop()
	for {
		metrics.Read(samples)
		for i, sm := range samples {
			if sm.Value.Kind() == metrics.KindUint64 {
				_ = s.client.Gauge(names[i], float64(sm.Value.Uint64()), nil, 1)
			}
		}
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// child returns the name and tags of a child.
func (s *StatsD) child(sp *spec, values []string) (string, []string) {
	if s.cfg.plain {
		var b strings.Builder
		b.WriteString(sp.name)
		for _, v := range values {
			b.WriteByte('.')
			if v == "" {
				b.WriteByte('_')
			}
			for _, r := range v {
				if r < 128 && (isLetter(byte(r)) || isDigit(byte(r)) || r == '_' || r == '-') {
					b.WriteRune(r)
				} else {
					b.WriteByte('_')
				}
			}
		}
		return b.String(), nil
	}
	tags := make([]string, len(values))
	for i, v := range values {
		// '|', ',' and line ends would break the datagram.
		tags[i] = sp.labels[i] + ":" + strings.Map(func(r rune) rune {
			if r == '|' || r == ',' || r == '\n' || r == '\r' || r == '#' {
				return '_'
			}
			return r
		}, v)
	}
	return sp.name, tags
}

type statsdCounter struct{ *family[*statsdCounterChild] }

type statsdCounterChild struct {
	client *statsd.Client
	name   string
	tags   []string
	frac   atomic.Uint64 // fractional part carried, float64 bits
}

func (c *statsdCounter) With(values ...string) CounterChild { return c.with(values) }

func (c *statsdCounterChild) Inc() { _ = c.client.Count(c.name, 1, c.tags, 1) }

func (c *statsdCounterChild) Add(delta float64) {
	checkDelta(delta)
	whole := math.Trunc(delta)
	if f := delta - whole; f != 0 {
		for {
			old := c.frac.Load()
			total := math.Float64frombits(old) + f
			w := math.Trunc(total)
			if c.frac.CompareAndSwap(old, math.Float64bits(total-w)) {
				whole += w
				break
			}
		}
	}
	if whole > 0 {
		_ = c.client.Count(c.name, int64(min(whole, math.MaxInt64)), c.tags, 1)
	}
}

// Counter implements [Provider].
func (s *StatsD) Counter(name, help string, labels ...string) (Counter, error) {
	sp, err := newSpec(counterKind, name, help, nil, labels)
	if err != nil {
		return nil, err
	}
	return get(&s.reg, sp, func() (*statsdCounter, error) {
		return &statsdCounter{newFamily(sp, func(values []string) *statsdCounterChild {
			name, tags := s.child(&sp, values)
			return &statsdCounterChild{client: s.client, name: name, tags: tags}
		})}, nil
	})
}

type statsdGauge struct{ *family[*statsdGaugeChild] }

// statsdGaugeChild keeps its value so that Add can send the new one; the
// lock keeps values sent in the order they were made.
type statsdGaugeChild struct {
	client *statsd.Client
	name   string
	tags   []string
	mu     sync.Mutex
	value  float64
}

func (g *statsdGauge) With(values ...string) GaugeChild { return g.with(values) }

func (g *statsdGaugeChild) Set(v float64) {
	g.mu.Lock()
	g.value = v
	_ = g.client.Gauge(g.name, v, g.tags, 1)
	g.mu.Unlock()
}

func (g *statsdGaugeChild) Add(delta float64) {
	g.mu.Lock()
	g.value += delta
	_ = g.client.Gauge(g.name, g.value, g.tags, 1)
	g.mu.Unlock()
}

// Gauge implements [Provider].
func (s *StatsD) Gauge(name, help string, labels ...string) (Gauge, error) {
	sp, err := newSpec(gaugeKind, name, help, nil, labels)
	if err != nil {
		return nil, err
	}
	return get(&s.reg, sp, func() (*statsdGauge, error) {
		return &statsdGauge{newFamily(sp, func(values []string) *statsdGaugeChild {
			name, tags := s.child(&sp, values)
			return &statsdGaugeChild{client: s.client, name: name, tags: tags}
		})}, nil
	})
}

type statsdHistogram struct{ *family[*statsdHistogramChild] }

type statsdHistogramChild struct {
	client *statsd.Client
	name   string
	tags   []string
	timer  bool // plain StatsD
}

func (h *statsdHistogram) With(values ...string) HistogramChild { return h.with(values) }

func (h *statsdHistogramChild) Observe(v float64) {
	if h.timer {
		_ = h.client.TimeInMilliseconds(h.name, v, h.tags, 1)
		return
	}
	_ = h.client.Histogram(h.name, v, h.tags, 1)
}

// Histogram implements [Provider]; buckets are validated, not sent.
func (s *StatsD) Histogram(name, help string, buckets []float64, labels ...string) (Histogram, error) {
	sp, err := newSpec(histogramKind, name, help, buckets, labels)
	if err != nil {
		return nil, err
	}
	return get(&s.reg, sp, func() (*statsdHistogram, error) {
		return &statsdHistogram{newFamily(sp, func(values []string) *statsdHistogramChild {
			name, tags := s.child(&sp, values)
			return &statsdHistogramChild{client: s.client, name: name, tags: tags, timer: s.cfg.plain}
		})}, nil
	})
}
