package metrics

import "errors"

// Multi returns a provider that creates each metric on every one of
// providers, and whose children record on all of theirs: Prometheus for
// /metrics and StatsD for the agent, say. Creating a metric fails when it
// fails on any provider.
func Multi(providers ...Provider) Provider { return multi(providers) }

type multi []Provider

func (m multi) Counter(name, help string, labels ...string) (Counter, error) {
	fs, err := each(m, func(p Provider) (Counter, error) { return p.Counter(name, help, labels...) })
	if err != nil {
		return nil, err
	}
	return multiCounter(fs), nil
}

func (m multi) Gauge(name, help string, labels ...string) (Gauge, error) {
	fs, err := each(m, func(p Provider) (Gauge, error) { return p.Gauge(name, help, labels...) })
	if err != nil {
		return nil, err
	}
	return multiGauge(fs), nil
}

func (m multi) Histogram(name, help string, buckets []float64, labels ...string) (Histogram, error) {
	fs, err := each(m, func(p Provider) (Histogram, error) { return p.Histogram(name, help, buckets, labels...) })
	if err != nil {
		return nil, err
	}
	return multiHistogram(fs), nil
}

// each creates a metric on every provider.
func each[F any](m multi, create func(Provider) (F, error)) ([]F, error) {
	fs := make([]F, 0, len(m))
	var errs []error
	for _, p := range m {
		f, err := create(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fs = append(fs, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return fs, nil
}

type (
	multiCounter   []Counter
	multiGauge     []Gauge
	multiHistogram []Histogram

	multiCounterChild   []CounterChild
	multiGaugeChild     []GaugeChild
	multiHistogramChild []HistogramChild
)

func (m multiCounter) With(values ...string) CounterChild {
	cs := make(multiCounterChild, len(m))
	for i, f := range m {
		cs[i] = f.With(values...)
	}
	return cs
}

func (m multiGauge) With(values ...string) GaugeChild {
	cs := make(multiGaugeChild, len(m))
	for i, f := range m {
		cs[i] = f.With(values...)
	}
	return cs
}

func (m multiHistogram) With(values ...string) HistogramChild {
	cs := make(multiHistogramChild, len(m))
	for i, f := range m {
		cs[i] = f.With(values...)
	}
	return cs
}

func (cs multiCounterChild) Inc() {
	for _, c := range cs {
		c.Inc()
	}
}

func (cs multiCounterChild) Add(delta float64) {
	checkDelta(delta)
	for _, c := range cs {
		c.Add(delta)
	}
}

func (cs multiGaugeChild) Set(v float64) {
	for _, c := range cs {
		c.Set(v)
	}
}

func (cs multiGaugeChild) Add(delta float64) {
	for _, c := range cs {
		c.Add(delta)
	}
}

func (cs multiHistogramChild) Observe(v float64) {
	for _, c := range cs {
		c.Observe(v)
	}
}
