package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	grpcresolver "google.golang.org/grpc/resolver"
)

// Option configures a [Builder].
type Option func(*config)

type config struct {
	logger       *slog.Logger
	registerer   prometheus.Registerer
	maxStaleness time.Duration
	now          func() time.Time
	backoff      Backoff
}

// WithLogger sets the logger for resolver events (registry errors, skipped
// entries, recoveries). Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithRegisterer exports resolver state on r: grpckit_resolver_endpoints,
// grpckit_resolver_last_update_timestamp_seconds,
// grpckit_resolver_staleness_seconds, grpckit_resolver_updates_total,
// grpckit_resolver_errors_total and grpckit_resolver_invalid_entries_total,
// labelled by scheme and service. Default: nil, no metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) { c.registerer = r }
}

// WithMaxStaleness makes resolvers give up their last known endpoints once
// the registry has been unreachable for d: they hand gRPC an empty list and
// the error, so RPCs fail with Unavailable instead of going to endpoints
// that may be gone. They publish the endpoints again as soon as the registry
// answers. Default: 0, endpoints are kept for as long as the registry is
// unreachable, which is the safe choice when servers outlive registry
// outages.
func WithMaxStaleness(d time.Duration) Option {
	return func(c *config) { c.maxStaleness = d }
}

// withClock sets the clock used for the staleness metrics and policy.
// Default: time.Now.
func withClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithRestartBackoff sets the delays before the core calls a [Source]'s
// Watch again after it returned. Default: Backoff{} (100ms to 5s).
func WithRestartBackoff(b Backoff) Option {
	return func(c *config) { c.backoff = b }
}

// ErrBadOption is returned (wrapped) by [NewBuilder] for invalid options.
var ErrBadOption = errors.New("resolver: bad option")

// Builder is a gRPC resolver builder for one scheme, built from a [Source].
// Pass it to a client with grpc.WithResolvers (client.WithDialOptions), or
// register it by name with google.golang.org/grpc/resolver.Register.
type Builder struct {
	scheme string
	src    Source
	cfg    config
	m      *metrics
}

// NewBuilder returns a builder for scheme whose resolvers watch src. It
// fails if scheme is not a valid URL scheme, src is nil, an option is
// invalid, or the metrics cannot be registered (another builder with the
// same scheme on the same Registerer).
func NewBuilder(scheme string, src Source, opts ...Option) (*Builder, error) {
	cfg := config{logger: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if err := validScheme(scheme); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("%w: nil Source", ErrBadOption)
	}
	if cfg.maxStaleness < 0 {
		return nil, fmt.Errorf("%w: negative max staleness %v", ErrBadOption, cfg.maxStaleness)
	}
	if cfg.backoff.Min < 0 || cfg.backoff.Max < 0 {
		return nil, fmt.Errorf("%w: negative backoff", ErrBadOption)
	}
	b := &Builder{scheme: scheme, src: src, cfg: cfg}
	if cfg.registerer != nil {
		b.m = newMetrics(scheme)
		if err := cfg.registerer.Register(b.m); err != nil {
			return nil, fmt.Errorf("resolver: register metrics: %w", err)
		}
	}
	return b, nil
}

func validScheme(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty scheme", ErrBadOption)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')
		if !ok {
			return fmt.Errorf("%w: invalid scheme %q", ErrBadOption, s)
		}
	}
	return nil
}

// Scheme returns the scheme the builder resolves.
func (b *Builder) Scheme() string { return b.scheme }

// Build starts a resolver for t. It does not wait for the registry: the
// source watches in the background, and until its first answer errors reach
// cc with cc.ReportError. It fails only for an invalid target (see
// [ParseTarget]).
func (b *Builder) Build(t grpcresolver.Target, cc grpcresolver.ClientConn, _ grpcresolver.BuildOptions) (grpcresolver.Resolver, error) {
	pt, err := ParseTarget(t)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &ccResolver{
		b:          b,
		cc:         cc,
		target:     pt,
		cancel:     cancel,
		done:       make(chan struct{}),
		resolveNow: make(chan struct{}, 1),
		set:        newEndpointSet(),
		log:        b.cfg.logger.With(slog.String("resolver.scheme", b.scheme), slog.String("resolver.service", pt.Service)),
	}
	resolvers.Add(r)
	go r.run(ctx)
	return r, nil
}

// ccResolver is one ClientConn's resolver.
type ccResolver struct {
	b          *Builder
	cc         grpcresolver.ClientConn
	target     Target
	cancel     context.CancelFunc
	done       chan struct{} // closed when run returns
	resolveNow chan struct{}
	log        *slog.Logger
	closeOnce  sync.Once

	mu         sync.Mutex
	set        endpointSet
	answered   bool      // a state was handed to cc
	closed     bool      // Close has run; nothing reaches cc any more
	lastSync   time.Time // when the source was last in sync
	errSince   time.Time // first error since the last sync; zero when in sync
	lastErr    error     // the latest error, for Snapshot
	gaveUp     bool      // endpoints withdrawn by the staleness policy
	staleTimer *time.Timer
}

var _ Updater = (*updater)(nil)

// updater is the Updater view of a ccResolver, so that the resolver's own
// method set stays gRPC's.
type updater ccResolver

func (r *ccResolver) run(ctx context.Context) {
	defer close(r.done)
	u := (*updater)(r)
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := r.b.src.Watch(ctx, r.target, u)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("resolver: source stopped watching")
		}
		u.ReportError(err)
		if time.Since(start) > r.b.cfg.backoff.Delay(30) {
			attempt = 0
		}
		if !Sleep(ctx, r.b.cfg.backoff.Delay(attempt)) {
			return
		}
	}
}

// ResolveNow passes gRPC's re-resolution request to the source.
func (r *ccResolver) ResolveNow(grpcresolver.ResolveNowOptions) {
	select {
	case r.resolveNow <- struct{}{}:
	default:
	}
}

// Close stops the source and waits for its goroutine. It is idempotent.
func (r *ccResolver) Close() {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
		r.mu.Lock()
		r.closed = true
		if r.staleTimer != nil {
			r.staleTimer.Stop()
		}
		r.mu.Unlock()
		resolvers.Remove(r)
	})
}

// Replace implements Updater.
func (u *updater) Replace(m map[string]Endpoint) {
	r := (*ccResolver)(u)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.synced(r.set.replace(m))
}

// Apply implements Updater.
func (u *updater) Apply(changes ...Change) {
	r := (*ccResolver)(u)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	changed := false
	for _, c := range changes {
		if c.Delete {
			changed = r.set.delete(c.Key) || changed
		} else {
			changed = r.set.put(c.Key, c.Endpoint) || changed
		}
	}
	r.synced(changed)
}

// synced records that the source is in sync and pushes the state if it
// changed. r.mu is held.
func (r *ccResolver) synced(changed bool) {
	r.lastSync = r.b.cfg.now()
	if !r.errSince.IsZero() {
		r.errSince = time.Time{}
		if r.answered {
			r.log.LogAttrs(context.Background(), slog.LevelInfo, "resolver: registry in sync again",
				slog.Int("resolver.endpoints", r.set.len()))
		}
	}
	if r.staleTimer != nil {
		r.staleTimer.Stop()
		r.staleTimer = nil
	}
	if r.gaveUp {
		r.gaveUp, changed = false, true
	}
	if r.answered && !changed {
		return
	}
	r.answered = true
	if r.b.m != nil {
		r.b.m.updates.WithLabelValues(r.target.Service).Inc()
	}
	if err := r.cc.UpdateState(grpcresolver.State{Endpoints: r.set.snapshot()}); err != nil {
		// The balancer refused the state (an empty list, for most); gRPC
		// asks for re-resolution on its own.
		r.log.LogAttrs(context.Background(), slog.LevelDebug, "resolver: state not accepted",
			slog.Int("resolver.endpoints", r.set.len()), slog.String("error", err.Error()))
	}
	if r.set.len() == 0 {
		// A real empty set: callers get Unavailable with an error that
		// names the service, not the balancer's "no children to pick from".
		r.cc.ReportError(fmt.Errorf("resolver: %s:///%s: %w", r.b.scheme, r.target.Service, ErrNoInstances))
	}
}

// ErrNoInstances is the error callers see (in an Unavailable status) while
// the registry lists no instance of the service.
var ErrNoInstances = errors.New("resolver: service has no instances")

// Invalid implements Updater.
func (u *updater) Invalid(key string, err error) {
	r := (*ccResolver)(u)
	if r.b.m != nil {
		r.b.m.invalid.WithLabelValues(r.target.Service).Inc()
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "resolver: skipping invalid registry entry",
		slog.String("resolver.key", key), slog.String("error", err.Error()))
}

// ReportError implements Updater.
func (u *updater) ReportError(err error) {
	r := (*ccResolver)(u)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.b.m != nil {
		r.b.m.errors.WithLabelValues(r.target.Service).Inc()
	}
	now := r.b.cfg.now()
	r.lastErr = err
	first := r.errSince.IsZero()
	if first {
		r.errSince = now
	}
	if !r.answered {
		r.cc.ReportError(fmt.Errorf("resolver: %s:///%s: %w", r.b.scheme, r.target.Service, err))
		if first {
			r.log.LogAttrs(context.Background(), slog.LevelWarn, "resolver: registry unreachable, no endpoints yet",
				slog.String("error", err.Error()))
		}
		return
	}
	if first {
		r.log.LogAttrs(context.Background(), slog.LevelWarn, "resolver: registry unreachable, keeping last known endpoints",
			slog.Int("resolver.endpoints", r.set.len()), slog.String("error", err.Error()))
	}
	r.checkStale(now, err)
}

// checkStale applies the staleness policy. r.mu is held.
func (r *ccResolver) checkStale(now time.Time, err error) {
	maxStale := r.b.cfg.maxStaleness
	if maxStale <= 0 || r.gaveUp || r.errSince.IsZero() {
		return
	}
	age := now.Sub(r.lastSync)
	if age < maxStale {
		if r.staleTimer == nil {
			r.staleTimer = time.AfterFunc(maxStale-age, func() {
				r.mu.Lock()
				defer r.mu.Unlock()
				if r.closed {
					return
				}
				r.staleTimer = nil
				r.checkStale(r.b.cfg.now(), err)
			})
		}
		return
	}
	r.gaveUp = true
	r.log.LogAttrs(context.Background(), slog.LevelError, "resolver: registry unreachable for too long, dropping endpoints",
		slog.Duration("resolver.staleness", age), slog.String("error", err.Error()))
	_ = r.cc.UpdateState(grpcresolver.State{})
	r.cc.ReportError(fmt.Errorf("resolver: %s:///%s: registry unreachable for %v: %w", r.b.scheme, r.target.Service, age.Round(time.Millisecond), err))
	if r.b.m != nil {
		r.b.m.updates.WithLabelValues(r.target.Service).Inc()
	}
}

// ResolveNow implements Updater.
func (u *updater) ResolveNow() <-chan struct{} { return u.resolveNow }

type resolverStats struct {
	service   string
	answered  bool
	endpoints int
	lastSync  time.Time
	staleness time.Duration
}

func (r *ccResolver) stats() resolverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := resolverStats{service: r.target.Service, answered: r.answered, endpoints: r.set.len(), lastSync: r.lastSync}
	if r.gaveUp {
		s.endpoints = 0
	}
	s.staleness = r.staleness()
	return s
}

// staleness is how long the registry has been unreachable since the last
// sync: 0 while in sync and before the first answer. r.mu is held.
func (r *ccResolver) staleness() time.Duration {
	if r.errSince.IsZero() || r.lastSync.IsZero() {
		return 0
	}
	return max(r.b.cfg.now().Sub(r.lastSync), 0)
}
