package client

import (
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/shared"
)

// ErrNoCredentials is returned by [New] when no transport security was
// chosen: pass grpckit.WithTLS, grpckit.WithTransportCredentials or,
// knowingly, grpckit.WithInsecure.
var ErrNoCredentials = errors.New("client: no transport credentials: use grpckit.WithTLS, grpckit.WithTransportCredentials or grpckit.WithInsecure")

// Option configures [New]: this package's options, and package grpckit's
// shared ones (logging, metrics, tracing, TLS, message sizes), which mean
// the same on a server. Options are applied in order; a later option
// overrides an earlier one of the same kind, except the interceptor and
// dial options, which accumulate. Only this module implements Option.
type Option interface {
	ClientOption(shared.Target)
}

// option is a client-only option.
type option func(*config)

func (f option) ClientOption(t shared.Target) { f(t.(*config)) }

type config struct {
	common     shared.Common // grpckit's shared options
	timeout    time.Duration
	balancer   string
	keepalive  keepalive.ClientParameters
	order      []Slot
	user       chain.Slots[grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor]
	dialOpts   []grpc.DialOption
	streamWin  int32
	connWin    int32
	poolConns  int // 0: no pool
	poolMax    int
	resilience resilienceConfig // resilience.go
	token      tokenConfig      // auth.go
	validation validationConfig // validation.go
}

// Shared returns the shared part of the configuration.
func (c *config) Shared() *shared.Common { return &c.common }

// Defaults.
const (
	// DefaultTimeout is the deadline given to unary calls whose context has
	// none.
	DefaultTimeout = 30 * time.Second
	// DefaultBalancer is grpckit's latency-aware power of two choices
	// (package balancer/p2c): it spreads calls over the endpoints the
	// resolver returns (a subset of 100 per client on large services),
	// routes around slow or failing ones, and ejects outliers. grpc-go's own
	// default, pick_first, sends everything to one.
	DefaultBalancer = p2c.Name
	// DefaultKeepaliveTime is how long a connection with open streams may
	// be idle before the client pings it. It equals the minimum ping
	// interval gRPC servers enforce by default (grpc-go's and grpc-java's
	// EnforcementPolicy.MinTime, 5 min): pinging more often makes such a
	// server close the connection with GOAWAY "too_many_pings", failing
	// the streams on it. Raise how often you ping only where you control
	// the servers' enforcement (grpckit's server permits every 10 s).
	DefaultKeepaliveTime = 5 * time.Minute
	// DefaultStreamWindow is the fixed HTTP/2 flow-control window of each
	// call: the most response data a server can make the client hold for a
	// call the caller does not read. Fixed windows also spare every call
	// the BDP pings of grpc-go's window growth (6 allocations per call and
	// per stream message), which otherwise grows a window to 16 MiB. 1 MiB
	// per stream is grpc-java's default window.
	DefaultStreamWindow = 1 << 20
	// DefaultConnWindow is the fixed HTTP/2 flow-control window of each
	// connection: several calls at their full window at once.
	DefaultConnWindow = 8 << 20
	// DefaultKeepaliveTimeout is how long the client waits for a ping's
	// answer before it closes the connection.
	DefaultKeepaliveTimeout = 20 * time.Second
)

func newConfig(opts []Option) (*config, error) {
	c := &config{
		common:    shared.Defaults(),
		timeout:   DefaultTimeout,
		balancer:  DefaultBalancer,
		keepalive: keepalive.ClientParameters{Time: DefaultKeepaliveTime, Timeout: DefaultKeepaliveTimeout},
		streamWin: DefaultStreamWindow,
		connWin:   DefaultConnWindow,
		order:     DefaultOrder(),
		user: chain.New[grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor](
			int(numSlots)),
	}
	for _, o := range opts {
		if o != nil {
			o.ClientOption(c)
		}
	}
	if c.common.Creds == nil {
		c.common.Errs = append(c.common.Errs, ErrNoCredentials)
	}
	if err := checkOrder(c.order); err != nil {
		c.common.Errs = append(c.common.Errs, err)
	}
	return c, c.common.Err()
}

func (c *config) errorf(format string, args ...any) {
	c.common.Errorf("client: "+format, args...)
}

// WithDefaultTimeout sets the deadline given to unary calls whose context
// has none; 0 turns the default off. A deadline the caller sets is never
// changed. Streams get no default deadline (see package timeout).
// Default: [DefaultTimeout].
func WithDefaultTimeout(d time.Duration) Option {
	return option(func(c *config) {
		if d < 0 {
			c.errorf("WithDefaultTimeout: negative timeout %v", d)
			return
		}
		c.timeout = d
	})
}

// WithBalancer sets the load-balancing policy by its registered name
// ("p2c", "wrr", grpc-go's "round_robin" or "pick_first", or your own). New fails if no
// balancer of that name is registered. Default: [DefaultBalancer].
func WithBalancer(name string) Option {
	return option(func(c *config) { c.balancer = name })
}

// WithWindowSize sets the HTTP/2 flow-control windows, in bytes (each at
// least 64 KiB): stream bounds the response data buffered for one call the
// caller has not read, conn the data in flight on one connection. Larger
// windows help large responses over long round trips: a stream moves at
// most one window per round trip (1 MiB per 10 ms is 100 MiB/s). 0, 0
// gives grpc-go's own windows, which start at 64 KiB and grow with the
// measured bandwidth-delay product, at the cost of its pings. Default:
// [DefaultStreamWindow] and [DefaultConnWindow].
func WithWindowSize(stream, conn int32) Option {
	return option(func(c *config) {
		if stream == 0 && conn == 0 {
			c.streamWin, c.connWin = 0, 0
			return
		}
		if stream < 64<<10 || conn < 64<<10 {
			c.errorf("WithWindowSize(%d, %d): want both at least 65536, or both 0", stream, conn)
			return
		}
		c.streamWin, c.connWin = stream, conn
	})
}

// WithConnPool gives each endpoint conns connections from the start, and
// up to maxConns: a connection is added when the least busy one carries
// three quarters of the concurrent streams its server allows (the
// SETTINGS_MAX_CONCURRENT_STREAMS the server advertised, 100 until it has).
// Calls go to the endpoint's ready connection carrying the fewest.
//
// One HTTP/2 connection per endpoint, gRPC's way, caps the calls in flight
// to an endpoint at its server's stream limit (100 in many servers); the
// calls beyond it wait in the client for a stream. A pool lifts the cap.
// The balancer still sees endpoints, not connections: p2c's and wrr's
// scores, ejection and the admin page count an endpoint's calls over all
// its connections. Connections added stay until the endpoint leaves.
//
// A server that advertises no limit (grpc-go's default) never fills a
// connection, so the pool stays at conns. The limit is read by the
// transport credentials grpckit installs: credentials passed with
// WithDialOptions replace them, and 100 is then assumed.
//
// It needs one of grpckit's balancers (p2c, the default, or wrr); New
// fails with another. 1 ≤ conns ≤ maxConns ≤ 64. Default: one connection
// per endpoint.
func WithConnPool(conns, maxConns int) Option {
	return option(func(c *config) {
		if conns < 1 || maxConns < conns || maxConns > 64 {
			c.errorf("WithConnPool: want 1 <= conns <= maxConns <= 64, got %d, %d", conns, maxConns)
			return
		}
		c.poolConns, c.poolMax = conns, maxConns
	})
}

// WithKeepalive sets the client's keepalive parameters. Pinging more often
// than the server permits (or without streams, where it does not permit
// that) makes it close the connection with GOAWAY "too_many_pings".
// Default: ping a connection with open streams after [DefaultKeepaliveTime]
// idle, never one without streams (gRPC servers' default enforcement), and
// give up after [DefaultKeepaliveTimeout].
func WithKeepalive(p keepalive.ClientParameters) Option {
	return option(func(c *config) { c.keepalive = p })
}

// WithUnaryInterceptor adds unary interceptors at slot s. They run inside
// the interceptor grpckit installs at that slot, if any, and in the order
// added. Use [SlotUser] for the innermost position.
func WithUnaryInterceptor(s Slot, i ...grpc.UnaryClientInterceptor) Option {
	return option(func(c *config) {
		if err := chain.Add(c.user.Unary, s, slotNames, i); err != nil {
			c.errorf("WithUnaryInterceptor: %w", err)
		}
	})
}

// WithStreamInterceptor adds stream interceptors at slot s, like
// [WithUnaryInterceptor] does for unary calls.
func WithStreamInterceptor(s Slot, i ...grpc.StreamClientInterceptor) Option {
	return option(func(c *config) {
		if err := chain.Add(c.user.Stream, s, slotNames, i); err != nil {
			c.errorf("WithStreamInterceptor: %w", err)
		}
	})
}

// WithOrder replaces the slot order, outermost first. It must name every
// slot exactly once; New fails otherwise. Default: [DefaultOrder].
func WithOrder(order ...Slot) Option {
	return option(func(c *config) { c.order = append([]Slot(nil), order...) })
}

// WithDialOptions passes options through to grpc.NewClient, after the
// builder's own, so they win where both set the same thing. Interceptors
// passed with grpc.WithChainUnaryInterceptor or WithChainStreamInterceptor
// run inside the whole grpckit chain; one passed with grpc.WithUnaryInterceptor
// or WithStreamInterceptor runs outside it (grpc-go puts that one first).
// [WithUnaryInterceptor] places interceptors precisely.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return option(func(c *config) { c.dialOpts = append(c.dialOpts, opts...) })
}
