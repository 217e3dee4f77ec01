package admin

import (
	"errors"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/grpckit/grpckit/internal/adminstate"
)

// registries returns the distinct registries /metrics serves: WithRegistry's,
// then those of the live servers and clients.
func (h *Handler) registries() []prometheus.Gatherer {
	out := slices.Clone(h.cfg.regs)
	seen := map[prometheus.Gatherer]bool{}
	for _, g := range out {
		seen[g] = true
	}
	add := func(g prometheus.Gatherer) {
		if g != nil && !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	for _, s := range adminstate.Servers.All(nil) {
		add(s.Registry)
	}
	for _, c := range adminstate.Clients.All(nil) {
		add(c.Registry)
	}
	return out
}

// gather merges the registries into what one shared registry would show:
// a series two registries both hold is added up (calls counted by two
// clients of the same method are the process's calls), except the Go
// runtime and process series, which describe the one process and are
// taken once. Families whose type or help differ keep the first one seen.
func (h *Handler) gather() ([]*dto.MetricFamily, error) {
	var errs []error
	byName := map[string]*dto.MetricFamily{}
	index := map[string]map[string]*dto.Metric{} // family → label signature → metric
	for _, g := range h.registries() {
		mfs, err := g.Gather()
		if err != nil {
			errs = append(errs, err)
		}
		for _, mf := range mfs {
			name := mf.GetName()
			have, ok := byName[name]
			if !ok {
				byName[name] = mf
				idx := map[string]*dto.Metric{}
				for _, m := range mf.Metric {
					idx[signature(m)] = m
				}
				index[name] = idx
				continue
			}
			if have.GetType() != mf.GetType() || have.GetHelp() != mf.GetHelp() {
				errs = append(errs, errors.New("admin: metric family "+name+" differs between registries; the first is served"))
				continue
			}
			runtimeSeries := strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
			for _, m := range mf.Metric {
				sig := signature(m)
				if old, ok := index[name][sig]; ok {
					if !runtimeSeries {
						add(have.GetType(), old, m)
					}
					continue
				}
				index[name][sig] = m
				have.Metric = append(have.Metric, m)
			}
		}
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(signature(a), signature(b)) })
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, errors.Join(errs...)
}

// signature identifies a series within its family by its labels.
func signature(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.Label { // sorted by name, as registries gather them
		b.WriteString(l.GetName())
		b.WriteByte(0)
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}

// add adds the value of m into dst.
func add(t dto.MetricType, dst, m *dto.Metric) {
	sum := func(a, b *float64) *float64 { v := a2(a) + a2(b); return &v }
	switch t {
	case dto.MetricType_COUNTER:
		if dst.Counter != nil && m.Counter != nil {
			dst.Counter.Value = sum(dst.Counter.Value, m.Counter.Value)
		}
	case dto.MetricType_GAUGE:
		if dst.Gauge != nil && m.Gauge != nil {
			dst.Gauge.Value = sum(dst.Gauge.Value, m.Gauge.Value)
		}
	case dto.MetricType_UNTYPED:
		if dst.Untyped != nil && m.Untyped != nil {
			dst.Untyped.Value = sum(dst.Untyped.Value, m.Untyped.Value)
		}
	case dto.MetricType_HISTOGRAM:
		d, s := dst.Histogram, m.Histogram
		if d == nil || s == nil {
			return
		}
		c := d.GetSampleCount() + s.GetSampleCount()
		d.SampleCount = &c
		d.SampleSum = sum(d.SampleSum, s.SampleSum)
		for _, sb := range s.Bucket {
			for _, db := range d.Bucket {
				if db.GetUpperBound() == sb.GetUpperBound() {
					n := db.GetCumulativeCount() + sb.GetCumulativeCount()
					db.CumulativeCount = &n
				}
			}
		}
	case dto.MetricType_SUMMARY:
		d, s := dst.Summary, m.Summary
		if d == nil || s == nil {
			return
		}
		c := d.GetSampleCount() + s.GetSampleCount()
		d.SampleCount = &c
		d.SampleSum = sum(d.SampleSum, s.SampleSum)
	}
}

// a2 reads an optional float.
func a2(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
