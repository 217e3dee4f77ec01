package consul

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/resolver"
)

// Scheme is the target scheme of the builder: "consul:///service".
const Scheme = "consul"

// Resolver defaults.
const (
	// DefaultWaitTime is how long one blocking query may wait for a change.
	DefaultWaitTime = 5 * time.Minute
	// DefaultMinInterval is the shortest time between two queries when the
	// index did not move (a query that returned early without news).
	DefaultMinInterval = time.Second
)

// Metadata keys the resolver sets besides the service's own meta.
const (
	// MetaTags holds the service's tags, comma-separated.
	MetaTags = "consul.tags"
	// MetaNode holds the name of the node the service runs on.
	MetaNode = "consul.node"
)

// BuilderOption configures [NewBuilder]. Target query parameters override
// the query options for one target.
type BuilderOption interface{ applyBuilder(*builderConfig) }

// RegistrarOption configures [NewRegistrar].
type RegistrarOption interface{ applyRegistrar(*registrarConfig) }

// Option configures both [NewBuilder] and [NewRegistrar].
type Option interface {
	BuilderOption
	RegistrarOption
}

type builderOption func(*builderConfig)

func (o builderOption) applyBuilder(c *builderConfig) { o(c) }

type registrarOption func(*registrarConfig)

func (o registrarOption) applyRegistrar(c *registrarConfig) { o(c) }

// bothOption sets the same thing on a builder and a registrar.
type bothOption struct {
	b func(*builderConfig)
	r func(*registrarConfig)
}

func (o bothOption) applyBuilder(c *builderConfig)     { o.b(c) }
func (o bothOption) applyRegistrar(c *registrarConfig) { o.r(c) }

type query struct {
	tags        []string
	dc          string
	near        string
	namespace   string
	partition   string
	passingOnly bool
}

type builderConfig struct {
	q           query
	wait        time.Duration
	minInterval time.Duration
	backoff     resolver.Backoff
	scheme      string
	core        []resolver.Option
	errs        []error
}

// WithTag keeps only instances carrying every one of tags (target
// parameter: tag, repeatable). Default: no tag filter.
func WithTag(tags ...string) BuilderOption {
	return builderOption(func(c *builderConfig) { c.q.tags = slices.Clone(tags) })
}

// WithDatacenter queries datacenter dc (target parameter: dc). Default: the
// agent's datacenter.
func WithDatacenter(dc string) BuilderOption {
	return builderOption(func(c *builderConfig) { c.q.dc = dc })
}

// WithNear sorts instances by round-trip time from node ("_agent" for the
// agent's node; target parameter: near). Default: no sorting.
func WithNear(node string) BuilderOption {
	return builderOption(func(c *builderConfig) { c.q.near = node })
}

// WithPassingOnly sets whether only instances whose checks all pass are
// used (target parameter: passing=true|false). When false, instances with a
// warning check are used too, with their warning weight; critical ones
// never are. Default: true.
func WithPassingOnly(b bool) BuilderOption {
	return builderOption(func(c *builderConfig) { c.q.passingOnly = b })
}

// WithNamespace queries namespace ns (Consul Enterprise; target parameter:
// ns). Default: the token's namespace.
func WithNamespace(ns string) BuilderOption {
	return builderOption(func(c *builderConfig) { c.q.namespace = ns })
}

// WithPartition queries admin partition p (Consul Enterprise; target
// parameter: partition). Default: the token's partition.
func WithPartition(p string) BuilderOption {
	return builderOption(func(c *builderConfig) { c.q.partition = p })
}

// WithWaitTime sets how long one blocking query may wait for a change
// (Consul caps it at 10 minutes). Default: [DefaultWaitTime].
func WithWaitTime(d time.Duration) BuilderOption {
	return builderOption(func(c *builderConfig) {
		if d <= 0 || d > 10*time.Minute {
			c.errs = append(c.errs, fmt.Errorf("%w: wait time %v (want (0, 10m])", ErrBadOption, d))
			return
		}
		c.wait = d
	})
}

// WithMinInterval sets the shortest time between two queries when the index
// did not move, so that an agent answering at once cannot make the resolver
// spin. Default: [DefaultMinInterval].
func WithMinInterval(d time.Duration) BuilderOption {
	return builderOption(func(c *builderConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: negative min interval", ErrBadOption))
			return
		}
		c.minInterval = d
	})
}

// WithBackoff sets the delays after a failure, exponential with jitter:
// between queries after a failed one (resolver), between attempts to
// register again after the agent failed or forgot the service (registrar).
// Default: resolver.Backoff{} (100ms to 5s).
func WithBackoff(b resolver.Backoff) Option {
	return bothOption{
		b: func(c *builderConfig) { c.backoff = b },
		r: func(c *registrarConfig) { c.backoff = b },
	}
}

// WithLogger sets the logger of the registrar and of the resolvers (the
// resolver core's, see resolver.WithLogger). Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return bothOption{
		b: func(c *builderConfig) {
			if l != nil {
				c.core = append(c.core, resolver.WithLogger(l))
			}
		},
		r: func(c *registrarConfig) {
			if l != nil {
				c.logger = l
			}
		},
	}
}

// WithScheme sets the target scheme. Default: [Scheme].
func WithScheme(s string) BuilderOption {
	return builderOption(func(c *builderConfig) { c.scheme = s })
}

// WithResolverOptions passes options to the resolver core (logger,
// Prometheus registerer, staleness policy; see grpckit/resolver).
func WithResolverOptions(opts ...resolver.Option) BuilderOption {
	return builderOption(func(c *builderConfig) { c.core = append(c.core, opts...) })
}

// NewBuilder returns a gRPC resolver builder for "consul:///service"
// targets that watches services through client with blocking health
// queries. Pass it to a client with grpc.WithResolvers. Target query
// parameters (tag, dc, near, passing, ns, partition) override the options:
//
//	consul:///addsvc?tag=blue&dc=dc2&passing=false
func NewBuilder(client *api.Client, opts ...BuilderOption) (*resolver.Builder, error) {
	cfg := builderConfig{
		q:           query{passingOnly: true},
		wait:        DefaultWaitTime,
		minInterval: DefaultMinInterval,
		scheme:      Scheme,
	}
	for _, o := range opts {
		if o != nil {
			o.applyBuilder(&cfg)
		}
	}
	if client == nil {
		cfg.errs = append(cfg.errs, fmt.Errorf("%w: nil client", ErrBadOption))
	}
	if cfg.backoff.Min < 0 || cfg.backoff.Max < 0 {
		cfg.errs = append(cfg.errs, fmt.Errorf("%w: negative backoff", ErrBadOption))
	}
	if len(cfg.errs) > 0 {
		return nil, cfg.errs[0]
	}
	return resolver.NewBuilder(cfg.scheme, &source{health: client.Health(), cfg: cfg}, cfg.core...)
}

// parseQuery applies a target's query parameters to base.
func parseQuery(v url.Values, base query) (query, error) {
	q := base
	q.tags = slices.Clone(base.tags)
	for k, vals := range v {
		last := vals[len(vals)-1]
		switch k {
		case "tag":
			q.tags = nil
			for _, t := range vals {
				if t == "" {
					return q, fmt.Errorf("%w: empty tag", resolver.ErrBadTarget)
				}
				q.tags = append(q.tags, t)
			}
		case "dc":
			q.dc = last
		case "near":
			q.near = last
		case "ns":
			q.namespace = last
		case "partition":
			q.partition = last
		case "passing":
			b, err := strconv.ParseBool(last)
			if err != nil {
				return q, fmt.Errorf("%w: passing=%q", resolver.ErrBadTarget, last)
			}
			q.passingOnly = b
		default:
			return q, fmt.Errorf("%w: unknown parameter %q (want tag, dc, near, passing, ns, partition)", resolver.ErrBadTarget, k)
		}
	}
	return q, nil
}

// source watches Consul's health endpoint for one service.
type source struct {
	health *api.Health
	cfg    builderConfig
}

// Watch implements resolver.Source with blocking queries, following the
// index rules of Consul's documentation.
func (s *source) Watch(ctx context.Context, t resolver.Target, u resolver.Updater) error {
	q, err := parseQuery(t.Query, s.cfg.q)
	if err != nil {
		// A bad target will not get better: report it and wait.
		u.ReportError(err)
		<-ctx.Done()
		return nil
	}
	w := watcher{cfg: s.cfg, q: q, now: time.Now}
	for {
		start := w.now()
		entries, meta, err := s.health.ServiceMultipleTags(t.Service, q.tags, q.passingOnly,
			(&api.QueryOptions{
				Datacenter: q.dc, Near: q.near, Namespace: q.namespace, Partition: q.partition,
				WaitIndex: w.index, WaitTime: s.cfg.wait,
			}).WithContext(ctx))
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		if err != nil {
			u.ReportError(err)
			delay = w.failed()
		} else {
			u.Replace(endpoints(entries, q.passingOnly))
			delay = w.answered(meta.LastIndex, start)
		}
		if delay > 0 && !resolver.Sleep(ctx, delay) {
			return nil
		}
	}
}

// watcher holds the blocking-query state: the index and the retry count.
type watcher struct {
	cfg      builderConfig
	q        query
	now      func() time.Time
	index    uint64
	failures int
}

// failed returns the delay after a failed query.
func (w *watcher) failed() time.Duration {
	d := w.cfg.backoff.Delay(w.failures)
	w.failures++
	return d
}

// answered applies Consul's index rules to the index an answer carried and
// returns how long to wait before the next query.
func (w *watcher) answered(got uint64, start time.Time) time.Duration {
	w.failures = 0
	prev := w.index
	switch {
	case got == 0:
		// Never block on 0 after a read: that returns at once, forever.
		w.index = 1
	case got < prev:
		// The index went backwards (a snapshot restore, another
		// cluster): start over with a non-blocking read.
		w.index = 0
		return 0
	default:
		w.index = got
	}
	if w.index == prev {
		// Nothing moved: the query returned early (wait ended, or an agent
		// answering at once). Do not spin.
		if el := w.now().Sub(start); el < w.cfg.minInterval {
			return w.cfg.minInterval - el
		}
	}
	return 0
}

// endpoints turns health entries into the endpoint set, keyed by node and
// service ID. Critical instances are skipped, and so are warning ones whose
// warning weight is 0.
func endpoints(entries []*api.ServiceEntry, passingOnly bool) map[string]resolver.Endpoint {
	m := make(map[string]resolver.Endpoint, len(entries))
	for _, e := range entries {
		if e == nil || e.Service == nil {
			continue
		}
		weight := e.Service.Weights.Passing
		switch e.Checks.AggregatedStatus() {
		case api.HealthPassing:
		case api.HealthWarning:
			if passingOnly {
				continue
			}
			weight = e.Service.Weights.Warning
			if weight <= 0 {
				continue
			}
		default:
			continue
		}
		host := e.Service.Address
		node := ""
		if e.Node != nil {
			node = e.Node.Node
			if host == "" {
				host = e.Node.Address
			}
		}
		if host == "" || e.Service.Port <= 0 || e.Service.Port > 65535 {
			continue
		}
		ep := resolver.Endpoint{
			Addr:     net.JoinHostPort(host, strconv.Itoa(e.Service.Port)),
			Metadata: maps.Clone(e.Service.Meta),
		}
		ep.Weight = uint32(min(weight, 1<<31))
		if ep.Metadata == nil {
			ep.Metadata = map[string]string{}
		}
		ep.Zone = ep.Metadata["zone"]
		if ep.Zone == "" && e.Service.Locality != nil {
			ep.Zone = e.Service.Locality.Zone
		}
		ep.Version = ep.Metadata["version"]
		if len(e.Service.Tags) > 0 {
			ep.Metadata[MetaTags] = strings.Join(e.Service.Tags, ",")
		}
		if node != "" {
			ep.Metadata[MetaNode] = node
		}
		m[node+"/"+e.Service.ID] = ep
	}
	return m
}
