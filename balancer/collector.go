package balancer

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/connectivity"
)

var labels = []string{"balancer", "target", "channel", "endpoint"}

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("grpckit_balancer_endpoint_"+name, help, labels, nil)
}

// Collector reports the state of every live grpckit balancer. Create it
// with [NewCollector].
type Collector struct {
	inFlight, latency, success, score, weight, ready, ejected, ejections, calls, failures *prometheus.Desc
}

// NewCollector returns a collector of the state of all live grpckit
// balancers in the process, to register on the registry you expose.
// Registering two on one registry fails as duplicates.
func NewCollector() *Collector {
	return &Collector{
		inFlight:  desc("in_flight", "Calls picked for the endpoint and not yet done."),
		latency:   desc("latency_seconds", "Peak-EWMA latency of the endpoint's calls."),
		success:   desc("success_rate", "Moving average of the endpoint's success rate, 0 to 1."),
		score:     desc("score", "The p2c score of the endpoint (latency × (in flight + 1) / (weight × success²)); lower is preferred."),
		weight:    desc("weight", "The endpoint's weight from the resolver."),
		ready:     desc("ready", "1 when the endpoint's connection is READY."),
		ejected:   desc("ejected", "1 while the endpoint is ejected."),
		ejections: desc("ejections_total", "Times the endpoint was ejected."),
		calls:     desc("calls_total", "Calls ended on the endpoint, the caller's cancellations excluded."),
		failures:  desc("failures_total", "Calls that failed on the endpoint."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.inFlight, c.latency, c.success, c.score, c.weight, c.ready, c.ejected, c.ejections, c.calls, c.failures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, b := range Snapshot() {
		id := strconv.FormatInt(b.Channel, 10)
		for _, e := range b.Endpoints {
			lv := []string{b.Name, b.Target, id, e.Addr}
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
			}
			counter := func(d *prometheus.Desc, v int64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
			}
			gauge(c.inFlight, float64(e.InFlight))
			gauge(c.latency, e.Latency.Seconds())
			gauge(c.success, e.SuccessRate)
			gauge(c.score, e.Score)
			gauge(c.weight, float64(e.Weight))
			gauge(c.ready, b2f(e.State == connectivity.Ready))
			gauge(c.ejected, b2f(e.Ejected))
			counter(c.ejections, e.Ejections)
			counter(c.calls, e.Calls)
			counter(c.failures, e.Failures)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
