package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"
	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/resolver"
)

// Scheme is the target scheme: "dnssrv:///_grpc._tcp.service.example", or
// "dnssrv://10.0.0.2:53/_grpc._tcp.service.example" to name the DNS server.
const Scheme = "dnssrv"

// Defaults.
const (
	// DefaultMinRefresh is the shortest time between two resolutions,
	// whatever the records' TTL or the number of ResolveNow calls.
	DefaultMinRefresh = time.Second
	// DefaultMaxRefresh is the longest time between two resolutions,
	// whatever the records' TTL.
	DefaultMaxRefresh = 5 * time.Minute
	// DefaultTimeout is how long one DNS query may take.
	DefaultTimeout = 2 * time.Second
	// fallbackServer is used when /etc/resolv.conf cannot be read.
	fallbackServer = "127.0.0.1:53"
	resolvConf     = "/etc/resolv.conf"
)

// ErrBadOption is returned (wrapped) by [NewBuilder] for invalid options.
var ErrBadOption = errors.New("dnssrv: bad option")

// Option configures [NewBuilder].
type Option func(*config)

type config struct {
	server     string
	minRefresh time.Duration
	maxRefresh time.Duration
	timeout    time.Duration
	backoff    resolver.Backoff
	scheme     string
	core       []resolver.Option
	errs       []error
}

// WithServer sets the DNS server (host or host:port, port 53 by default)
// for targets without an authority. Default: the first nameserver of
// /etc/resolv.conf, or 127.0.0.1:53 when it cannot be read.
func WithServer(addr string) Option {
	return func(c *config) {
		s, err := serverAddr(addr)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%w: WithServer: %w", ErrBadOption, err))
			return
		}
		c.server = s
	}
}

// WithRefresh bounds the time between two resolutions: the records' TTL,
// raised to min and lowered to max. min also rate-limits ResolveNow.
// Default: [DefaultMinRefresh], [DefaultMaxRefresh].
func WithRefresh(minRefresh, maxRefresh time.Duration) Option {
	return func(c *config) {
		if minRefresh <= 0 || maxRefresh < minRefresh {
			c.errs = append(c.errs, fmt.Errorf("%w: refresh bounds %v..%v", ErrBadOption, minRefresh, maxRefresh))
			return
		}
		c.minRefresh, c.maxRefresh = minRefresh, maxRefresh
	}
}

// WithTimeout sets how long one DNS query may take. Default:
// [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: timeout %v", ErrBadOption, d))
			return
		}
		c.timeout = d
	}
}

// WithBackoff sets the delays between resolutions after a failed one
// (exponential, with jitter). Default: resolver.Backoff{} (100ms to 5s).
func WithBackoff(b resolver.Backoff) Option {
	return func(c *config) { c.backoff = b }
}

// WithScheme sets the target scheme. Default: [Scheme].
func WithScheme(s string) Option {
	return func(c *config) { c.scheme = s }
}

// WithResolverOptions passes options to the resolver core (logger,
// Prometheus registerer, staleness policy; see grpckit/resolver).
func WithResolverOptions(opts ...resolver.Option) Option {
	return func(c *config) { c.core = append(c.core, opts...) }
}

// NewBuilder returns a gRPC resolver builder for "dnssrv:///name" targets.
// The package registers one with the defaults in init, so "dnssrv:///"
// targets work without it; use NewBuilder with grpc.WithResolvers for other
// options.
func NewBuilder(opts ...Option) (*resolver.Builder, error) {
	c := config{
		minRefresh: DefaultMinRefresh,
		maxRefresh: DefaultMaxRefresh,
		timeout:    DefaultTimeout,
		scheme:     Scheme,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.backoff.Min < 0 || c.backoff.Max < 0 {
		c.errs = append(c.errs, fmt.Errorf("%w: negative backoff", ErrBadOption))
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	return resolver.NewBuilder(c.scheme, &source{cfg: c}, c.core...)
}

func init() {
	if b, err := NewBuilder(); err == nil {
		grpcresolver.Register(b)
	}
}

// systemServer returns the first nameserver of /etc/resolv.conf, or
// 127.0.0.1:53.
func systemServer() string {
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil || len(cc.Servers) == 0 {
		return fallbackServer
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port)
}

// serverAddr validates a DNS server address, adding port 53 when it has
// none.
func serverAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, "53"
		if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			host = s[1 : len(s)-1]
		}
	}
	if host == "" {
		return "", fmt.Errorf("%w: no host in DNS server %q", resolver.ErrBadTarget, s)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("%w: bad port in DNS server %q", resolver.ErrBadTarget, s)
	}
	return net.JoinHostPort(host, port), nil
}

// parseTarget returns the name to query and the DNS server for t.
func parseTarget(t resolver.Target, defaultServer string) (name, server string, err error) {
	if len(t.Query) > 0 {
		return "", "", fmt.Errorf("%w: dnssrv targets take no parameters", resolver.ErrBadTarget)
	}
	if _, ok := dns.IsDomainName(t.Service); !ok {
		return "", "", fmt.Errorf("%w: %q is not a domain name", resolver.ErrBadTarget, t.Service)
	}
	server = defaultServer
	if t.Authority != "" {
		if server, err = serverAddr(t.Authority); err != nil {
			return "", "", err
		}
	}
	return dns.Fqdn(t.Service), server, nil
}

// source resolves one SRV name.
type source struct{ cfg config }

// Watch implements resolver.Source: it resolves at the records' TTL
// (bounded by the refresh options) and on ResolveNow, and after failures
// with backoff.
func (s *source) Watch(ctx context.Context, t resolver.Target, u resolver.Updater) error {
	def := s.cfg.server
	if def == "" && t.Authority == "" {
		def = systemServer()
	}
	name, server, err := parseTarget(t, def)
	if err != nil {
		u.ReportError(err)
		<-ctx.Done()
		return nil
	}
	l := lookup{server: server, timeout: s.cfg.timeout}
	failures := 0
	for {
		last := time.Now()
		a, err := l.resolve(ctx, name)
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		if err != nil {
			// A timeout or SERVFAIL says nothing about the service: the
			// core keeps the last set.
			u.ReportError(err)
			delay = s.cfg.backoff.Delay(failures)
			failures++
		} else {
			failures = 0
			u.Replace(a.endpoints)
			delay = s.cfg.maxRefresh
			if a.hasTTL {
				delay = min(max(time.Duration(a.ttl)*time.Second, s.cfg.minRefresh), s.cfg.maxRefresh)
			}
		}
		if !s.wait(ctx, u, last, delay) {
			return nil
		}
	}
}

// wait waits delay after last, or less when gRPC asks for a resolution
// (but no sooner than minRefresh after last). It reports false when ctx
// ended.
func (s *source) wait(ctx context.Context, u resolver.Updater, last time.Time, delay time.Duration) bool {
	t := time.NewTimer(delay - time.Since(last))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-u.ResolveNow():
			if d := s.cfg.minRefresh - time.Since(last); d < delay-time.Since(last) {
				t.Reset(max(d, 0))
			}
		}
	}
}
