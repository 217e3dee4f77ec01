package resolver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports the state of one builder's resolvers. Gauges are computed
// at scrape time from the live resolvers; when several ClientConns resolve
// the same service, the most recently updated one is reported.
type metrics struct {
	updates *prometheus.CounterVec
	errors  *prometheus.CounterVec
	invalid *prometheus.CounterVec

	endpoints  *prometheus.Desc
	lastUpdate *prometheus.Desc
	staleness  *prometheus.Desc
}

func newMetrics(scheme string) *metrics {
	cl := prometheus.Labels{"scheme": scheme}
	lbl := []string{"service"}
	return &metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_resolver_updates_total", ConstLabels: cl,
			Help: "Endpoint lists handed to gRPC.",
		}, lbl),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_resolver_errors_total", ConstLabels: cl,
			Help: "Errors reading or watching the registry.",
		}, lbl),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_resolver_invalid_entries_total", ConstLabels: cl,
			Help: "Registry entries skipped because they could not be decoded.",
		}, lbl),
		endpoints: prometheus.NewDesc("grpckit_resolver_endpoints",
			"Endpoints currently handed to gRPC.", lbl, cl),
		lastUpdate: prometheus.NewDesc("grpckit_resolver_last_update_timestamp_seconds",
			"When the registry was last known to be in sync (Unix seconds).", lbl, cl),
		staleness: prometheus.NewDesc("grpckit_resolver_staleness_seconds",
			"Seconds since the registry was last known to be in sync; 0 while it is.", lbl, cl),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.updates.Describe(ch)
	m.errors.Describe(ch)
	m.invalid.Describe(ch)
	ch <- m.endpoints
	ch <- m.lastUpdate
	ch <- m.staleness
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.updates.Collect(ch)
	m.errors.Collect(ch)
	m.invalid.Collect(ch)
	best := map[string]resolverStats{}
	for _, r := range resolversOf(m) {
		s := r.stats()
		if !s.answered {
			continue
		}
		if b, ok := best[s.service]; !ok || s.lastSync.After(b.lastSync) {
			best[s.service] = s
		}
	}
	for svc, s := range best {
		ch <- prometheus.MustNewConstMetric(m.endpoints, prometheus.GaugeValue, float64(s.endpoints), svc)
		ch <- prometheus.MustNewConstMetric(m.lastUpdate, prometheus.GaugeValue, float64(s.lastSync.UnixNano())/1e9, svc)
		ch <- prometheus.MustNewConstMetric(m.staleness, prometheus.GaugeValue, s.staleness.Seconds(), svc)
	}
}
