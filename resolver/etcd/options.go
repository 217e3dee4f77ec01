package etcd

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/grpckit/grpckit/resolver"
)

// DefaultPrefix is the key prefix under which services register:
// DefaultPrefix + "<service>/<instance-id>".
const DefaultPrefix = "/grpckit/services/"

// Scheme is the default target scheme: "etcd:///<service>".
const Scheme = "etcd"

// BuilderOption configures [NewBuilder].
type BuilderOption interface{ applyBuilder(*builderConfig) }

// RegistrarOption configures [NewRegistrar].
type RegistrarOption interface{ applyRegistrar(*registrarConfig) }

// Option configures both [NewBuilder] and [NewRegistrar].
type Option interface {
	BuilderOption
	RegistrarOption
}

type common struct {
	prefix  string
	logger  *slog.Logger
	backoff resolver.Backoff
}

type builderConfig struct {
	common
	scheme   string
	core     []resolver.Option
	timeout  time.Duration
	progress time.Duration
}

type registrarConfig struct {
	common
	addr     string
	id       string
	ttl      time.Duration
	weight   uint32
	zone     string
	version  string
	metadata map[string]string
}

type bothOption func(*common)

func (o bothOption) applyBuilder(c *builderConfig)     { o(&c.common) }
func (o bothOption) applyRegistrar(c *registrarConfig) { o(&c.common) }

type builderOption func(*builderConfig)

func (o builderOption) applyBuilder(c *builderConfig) { o(c) }

type registrarOption func(*registrarConfig)

func (o registrarOption) applyRegistrar(c *registrarConfig) { o(c) }

// WithPrefix sets the key prefix; it must start and end with "/". Resolver
// and registrar must agree on it. Default: [DefaultPrefix].
func WithPrefix(p string) Option {
	return bothOption(func(c *common) { c.prefix = p })
}

// WithLogger sets the logger. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return bothOption(func(c *common) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithBackoff sets the delays between attempts to reach etcd after a
// failure (reload and re-watch for the resolver; re-grant and re-put for the
// registrar). Default: resolver.Backoff{Min: 100ms, Max: 5s}.
func WithBackoff(b resolver.Backoff) Option {
	return bothOption(func(c *common) { c.backoff = b })
}

// WithScheme sets the scheme the builder resolves. Default: [Scheme].
func WithScheme(s string) BuilderOption {
	return builderOption(func(c *builderConfig) { c.scheme = s })
}

// WithResolverOptions passes options to the resolver core (metrics with
// resolver.WithRegisterer, the staleness policy with
// resolver.WithMaxStaleness, resolver.WithRestartBackoff, ...), as in
// every grpckit resolver package. Default: none.
func WithResolverOptions(opts ...resolver.Option) BuilderOption {
	return builderOption(func(c *builderConfig) { c.core = append(c.core, opts...) })
}

// WithRequestTimeout bounds each read of the service's keys. Default: 5s.
func WithRequestTimeout(d time.Duration) BuilderOption {
	return builderOption(func(c *builderConfig) { c.timeout = d })
}

// WithProgressInterval sets how often a resolver asks etcd for a watch
// progress notification to learn that it is still in sync; an interval
// without an answer counts as an error (the endpoints are kept, the
// staleness grows). Default: 5s.
func WithProgressInterval(d time.Duration) BuilderOption {
	return builderOption(func(c *builderConfig) { c.progress = d })
}

// WithAddress sets the address the registrar advertises instead of the
// listener's. Needed when the server listens on an unspecified address
// (":8080") or behind NAT. Default: the listener's address.
func WithAddress(addr string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.addr = addr })
}

// WithInstanceID sets the instance id, the last element of the key. It
// must be unique among the service's instances. Default: a random id.
func WithInstanceID(id string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.id = id })
}

// WithTTL sets the lease TTL, in whole seconds: how long the registration
// outlives a server that dies without deregistering. Default: 10s.
func WithTTL(d time.Duration) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.ttl = d })
}

// WithWeight sets the advertised weight. Default: 0 (balancers use 1).
func WithWeight(w uint32) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.weight = w })
}

// WithZone sets the advertised zone. Default: none.
func WithZone(z string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.zone = z })
}

// WithVersion sets the advertised version. Default: none.
func WithVersion(v string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.version = v })
}

// WithMetadata sets the advertised metadata (copied). Default: none.
func WithMetadata(md map[string]string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.metadata = maps.Clone(md) })
}

func validPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w: prefix %q must start and end with /", ErrBadOption, p)
	}
	return nil
}
