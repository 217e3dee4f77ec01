package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/clock"
	"github.com/grpckit/grpckit/internal/promreg"
)

// Message is the status message of a rejected call.
const Message = "too many requests"

// DefaultMaxKeys is the default bound on the number of keyed buckets.
const DefaultMaxKeys = 10000

// Configuration errors returned by [New].
var (
	// ErrNoLimit is returned when neither a rate nor a concurrency limit is set.
	ErrNoLimit = errors.New("ratelimit: no rate or concurrency limit set")
	// ErrInvalid is wrapped by the errors of invalid option values.
	ErrInvalid = errors.New("ratelimit: invalid option")
)

// errRejected is the one rejection error: allocated once, returned as is.
var errRejected = status.Error(codes.ResourceExhausted, Message)

// KeyFunc returns the key whose bucket a call draws from. method is the full
// method name, "/package.Service/Method".
type KeyFunc func(ctx context.Context, method string) string

// ByMethod keys buckets by full method name. It does not allocate.
func ByMethod(_ context.Context, method string) string { return method }

// ByPeer keys buckets by the caller's IP address (without the port, so
// that a client reconnecting keeps its bucket). Server side only: on a
// client every call has the same key "".
func ByPeer(ctx context.Context, _ string) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return p.Addr.String()
}

// ByMetadata keys buckets by the first value of the incoming metadata
// header name (such as a tenant id); calls without it share the key "".
// Server side. The header name is matched in lowercase, as gRPC sends it.
func ByMetadata(name string) KeyFunc {
	return func(ctx context.Context, _ string) string {
		if v := metadata.ValueFromIncomingContext(ctx, name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
}

// Option configures [New].
type Option func(*config)

type config struct {
	limit       rate.Limit
	burst       int
	hasRate     bool
	concurrency int64
	key         KeyFunc
	maxKeys     int
	now         clock.Clock
	wait        bool
	reg         prometheus.Registerer
	name        string
	errs        []error
}

// WithRate sets the token bucket: r calls per second on average, bursts of
// up to burst calls. r = rate.Inf lets every call through (burst is then
// ignored); otherwise r must be positive and burst at least 1.
// Default: no rate limit.
func WithRate(r rate.Limit, burst int) Option {
	return func(c *config) {
		if r != rate.Inf && (!(r > 0) || burst < 1) {
			c.errs = append(c.errs, fmt.Errorf("%w: WithRate(%v, %d): want r > 0 and burst >= 1", ErrInvalid, r, burst))
			return
		}
		c.limit, c.burst, c.hasRate = r, burst, true
	}
}

// WithConcurrency sets the maximum number of calls in flight (streams count
// on the server only, see the package doc). Default: no concurrency limit.
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("%w: WithConcurrency(%d): want n >= 1", ErrInvalid, n))
			return
		}
		c.concurrency = int64(n)
	}
}

// WithKey gives each key its own token bucket. Default: one global bucket.
func WithKey(k KeyFunc) Option {
	return func(c *config) { c.key = k }
}

// WithMaxKeys bounds the number of keyed buckets; see the package doc.
// Default: [DefaultMaxKeys].
func WithMaxKeys(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("%w: WithMaxKeys(%d): want n >= 1", ErrInvalid, n))
			return
		}
		c.maxKeys = n
	}
}

// withClock sets the clock, for tests. Default: the runtime's monotonic
// clock.
func withClock(now func() time.Time) Option {
	return func(c *config) { c.now = clock.FromTime(now) }
}

// WithWait makes the client interceptors wait for a token, as long as the
// call's deadline allows, instead of failing fast. The server interceptors
// never wait. Default: fail fast.
func WithWait() Option {
	return func(c *config) { c.wait = true }
}

// WithRegisterer exports grpckit_ratelimit_rejected_total{limiter,reason}
// on r, reason being "rate" or "concurrency". Default: no metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(c *config) { c.reg = r }
}

// WithName sets the limiter label of the metrics, to tell limiters apart.
// Default: "default".
func WithName(name string) Option {
	return func(c *config) { c.name = name }
}

// Limiter admits or rejects calls. It is safe for concurrent use; one
// Limiter may back several interceptors, which then share its limits.
type Limiter struct {
	global      bucket
	interval    int64 // ns per token; 0: no rate limit
	tolerance   int64 // burst * interval: how far ahead of now the bucket may run
	concurrency int64
	inflight    atomic.Int64
	key         KeyFunc
	keys        *keySet
	now         clock.Clock
	wait        bool

	rateRejected, concRejected prometheus.Counter
	nRate, nConc               atomic.Int64
}

// Rejected returns how many calls l rejected since it was created: over
// the rate, and over the concurrency limit.
func (l *Limiter) Rejected() (rate, concurrency int64) { return l.nRate.Load(), l.nConc.Load() }

// New returns a Limiter. At least one of [WithRate] and [WithConcurrency]
// is required.
func New(opts ...Option) (*Limiter, error) {
	c := &config{maxKeys: DefaultMaxKeys, now: clock.Real, name: "default"}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	if !c.hasRate && c.concurrency == 0 {
		return nil, ErrNoLimit
	}
	l := &Limiter{concurrency: c.concurrency, now: c.now, wait: c.wait}
	if c.hasRate && c.limit != rate.Inf {
		l.interval = int64(math.Ceil(float64(time.Second) / float64(c.limit)))
		if l.interval < 1 {
			l.interval = 1
		}
		l.tolerance = int64(c.burst) * l.interval
		if c.key != nil {
			l.key = c.key
			l.keys = &keySet{seed: maphash.MakeSeed(), m: map[uint64]*bucket{}, max: c.maxKeys}
		}
	}
	if c.reg != nil {
		vec := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpckit_ratelimit_rejected_total",
			Help: "Calls rejected by a grpckit rate or concurrency limiter.",
		}, []string{"limiter", "reason"})
		vec, err := promreg.Register(c.reg, vec)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: register metrics: %w", err)
		}
		l.rateRejected = vec.WithLabelValues(c.name, "rate")
		l.concRejected = vec.WithLabelValues(c.name, "concurrency")
	}
	return l, nil
}

// bucket is a token bucket in GCRA form: tat is the theoretical arrival time
// of the next call at the configured rate. A call at now is allowed if, after
// it, tat would be at most tolerance (burst × interval) ahead of now.
type bucket struct {
	tat atomic.Int64
}

// take tries to take one token. It reads the clock after loading the
// bucket, so that its reading is never older than the one that set the
// bucket: a caller whose reading lagged (read, then descheduled while
// others took tokens) would see the bucket far ahead of its "now" and be
// rejected with tokens to spare.
func (b *bucket) take(now clock.Clock, interval, tolerance int64) bool {
	for {
		tat := b.tat.Load()
		t := now()
		next := max(tat, t) + interval
		if next-t > tolerance {
			return false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// reserve takes one token even if none is available yet, unless the wait
// would exceed maxWait. It returns how long to wait (<= 0: none). Like
// take, it reads the clock after loading the bucket.
func (b *bucket) reserve(now clock.Clock, interval, tolerance, maxWait int64) (wait int64, ok bool) {
	for {
		tat := b.tat.Load()
		t := now()
		next := max(tat, t) + interval
		wait = next - t - tolerance
		if wait > maxWait {
			return wait, false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return wait, true
		}
	}
}

// keySet is the bounded set of keyed buckets. Keys are held as 64-bit
// hashes (maphash, with a seed of the set's own), so a key's length costs
// nothing after the lookup: a 256 KiB metadata value is hashed, not kept.
type keySet struct {
	seed maphash.Seed
	mu   sync.RWMutex
	m    map[uint64]*bucket
	max  int
}

// evictSample is how many buckets a full set looks at to choose the one to
// drop for a new key: the one that has refilled most (the smallest tat).
const evictSample = 8

func (k *keySet) get(key string) *bucket {
	h := maphash.String(k.seed, key)
	k.mu.RLock()
	b, ok := k.m[h]
	k.mu.RUnlock()
	if ok {
		return b
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if b, ok := k.m[h]; ok {
		return b
	}
	if len(k.m) >= k.max {
		// Full: drop the most refilled of a few buckets (map iteration
		// starts at a random place), so that a new key always gets a
		// bucket of its own with its full burst. A refilled bucket is
		// indistinguishable from a new one; a bucket dropped before it
		// refilled gives its key a fresh burst when it comes back.
		var victim uint64
		best, n := int64(math.MaxInt64), 0
		for kk, bb := range k.m {
			if t := bb.tat.Load(); t < best {
				victim, best = kk, t
			}
			if n++; n == evictSample {
				break
			}
		}
		delete(k.m, victim)
	}
	b = &bucket{}
	k.m[h] = b
	return b
}

// Keys returns the number of keyed buckets held.
func (l *Limiter) Keys() int {
	if l.keys == nil {
		return 0
	}
	l.keys.mu.RLock()
	defer l.keys.mu.RUnlock()
	return len(l.keys.m)
}

// InFlight returns the number of calls holding a concurrency slot.
func (l *Limiter) InFlight() int { return int(l.inflight.Load()) }

// Allow reports whether a call to method may start now, taking a token if
// so. It does not take a concurrency slot.
func (l *Limiter) Allow(ctx context.Context, method string) bool {
	if l.interval == 0 {
		return true
	}
	b := &l.global
	if l.keys != nil {
		b = l.keys.get(l.key(ctx, method))
	}
	if b.take(l.now, l.interval, l.tolerance) {
		return true
	}
	l.nRate.Add(1)
	if l.rateRejected != nil {
		l.rateRejected.Inc()
	}
	return false
}

// acquire takes a concurrency slot, if there is a concurrency limit.
func (l *Limiter) acquire() bool {
	if l.concurrency == 0 {
		return true
	}
	if l.inflight.Add(1) <= l.concurrency {
		return true
	}
	l.inflight.Add(-1)
	l.nConc.Add(1)
	if l.concRejected != nil {
		l.concRejected.Inc()
	}
	return false
}

func (l *Limiter) release() {
	if l.concurrency != 0 {
		l.inflight.Add(-1)
	}
}

// admit takes a slot and a token, or neither.
func (l *Limiter) admit(ctx context.Context, method string) bool {
	if !l.acquire() {
		return false
	}
	if !l.Allow(ctx, method) {
		l.release()
		return false
	}
	return true
}

// waitToken takes a token, waiting as long as ctx's deadline allows.
func (l *Limiter) waitToken(ctx context.Context, method string) error {
	if l.interval == 0 {
		return nil
	}
	b := &l.global
	if l.keys != nil {
		b = l.keys.get(l.key(ctx, method))
	}
	maxWait := int64(math.MaxInt64)
	if d, ok := ctx.Deadline(); ok {
		maxWait = int64(time.Until(d))
	}
	wait, ok := b.reserve(l.now, l.interval, l.tolerance, maxWait)
	if !ok {
		l.nRate.Add(1)
		if l.rateRejected != nil {
			l.rateRejected.Inc()
		}
		return errRejected
	}
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(wait))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.tat.Add(-l.interval) // give the unused token back
		return status.FromContextError(ctx.Err()).Err()
	}
}

// UnaryServerInterceptor rejects unary calls over l's limits with
// codes.ResourceExhausted.
func UnaryServerInterceptor(l *Limiter) grpc.UnaryServerInterceptor {
	return unaryServerStage(l).Interceptor()
}

// unaryServerStage is UnaryServerInterceptor as a stage, which the server
// builder chains without allocating (see internal/chain).
func unaryServerStage(l *Limiter) chain.Stage {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
		if !l.admit(ctx, info.FullMethod) {
			return nil, errRejected
		}
		defer l.release()
		return next(ctx, req, info, handler)
	}
}

// StreamServerInterceptor rejects streams over l's limits with
// codes.ResourceExhausted; an admitted stream holds its concurrency slot
// until its handler returns.
func StreamServerInterceptor(l *Limiter) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !l.admit(ss.Context(), info.FullMethod) {
			return errRejected
		}
		defer l.release()
		return handler(srv, ss)
	}
}

// UnaryClientInterceptor limits unary calls before they are sent: over the
// limit they fail with codes.ResourceExhausted, or wait for a token with
// [WithWait].
func UnaryClientInterceptor(l *Limiter) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if !l.acquire() {
			return errRejected
		}
		defer l.release()
		if l.wait {
			if err := l.waitToken(ctx, method); err != nil {
				return err
			}
		} else if !l.Allow(ctx, method) {
			return errRejected
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor limits the rate at which streams are started;
// see the package doc for why it has no concurrency limit.
func StreamClientInterceptor(l *Limiter) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if l.wait {
			if err := l.waitToken(ctx, method); err != nil {
				return nil, err
			}
		} else if !l.Allow(ctx, method) {
			return nil, errRejected
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
}
