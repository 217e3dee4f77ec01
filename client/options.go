package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/internal/chain"
)

// ErrNoCredentials is returned by [New] when no transport security was
// chosen: pass [WithTLS], [WithTransportCredentials] or, knowingly,
// [WithInsecure].
var ErrNoCredentials = errors.New("client: no transport credentials: use WithTLS, WithTransportCredentials or WithInsecure")

// Option configures [New]. Options are applied in order; a later option
// overrides an earlier one of the same kind, except the interceptor and dial
// options, which accumulate.
type Option func(*config)

type config struct {
	creds      credentials.TransportCredentials
	timeout    time.Duration
	balancer   string
	keepalive  keepalive.ClientParameters
	maxRecv    int
	maxSend    int
	order      []Slot
	user       chain.Slots[grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor]
	dialOpts   []grpc.DialOption
	obs        obsConfig        // observability.go
	resilience resilienceConfig // resilience.go
	errs       []error
}

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
	// DefaultKeepaliveTimeout is how long the client waits for a ping's
	// answer before it closes the connection.
	DefaultKeepaliveTimeout = 20 * time.Second
)

func newConfig(opts []Option) (*config, error) {
	c := &config{
		timeout:   DefaultTimeout,
		balancer:  DefaultBalancer,
		keepalive: keepalive.ClientParameters{Time: DefaultKeepaliveTime, Timeout: DefaultKeepaliveTimeout},
		order:     DefaultOrder(),
		obs:       defaultObs(),
		user: chain.New[grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor](
			int(numSlots)),
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.creds == nil {
		c.errs = append(c.errs, ErrNoCredentials)
	}
	if err := checkOrder(c.order); err != nil {
		c.errs = append(c.errs, err)
	}
	return c, errors.Join(c.errs...)
}

func (c *config) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("client: "+format, args...))
}

// WithTLS connects over TLS. A nil config uses the system roots and the
// target's host name. One of WithTLS, [WithTransportCredentials] and
// [WithInsecure] is required.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.creds = credentials.NewTLS(cfg)
	}
}

// WithTransportCredentials sets the transport credentials (mTLS, ALTS, ...).
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return func(c *config) {
		if creds == nil {
			c.errorf("WithTransportCredentials: nil credentials")
			return
		}
		c.creds = creds
	}
}

// WithInsecure connects in plaintext. Use it only where the network is
// trusted (loopback, a mesh sidecar); it must be asked for explicitly.
func WithInsecure() Option {
	return func(c *config) { c.creds = insecure.NewCredentials() }
}

// WithDefaultTimeout sets the deadline given to unary calls whose context
// has none; 0 turns the default off. A deadline the caller sets is never
// changed. Streams get no default deadline (see package timeout).
// Default: [DefaultTimeout].
func WithDefaultTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errorf("WithDefaultTimeout: negative timeout %v", d)
			return
		}
		c.timeout = d
	}
}

// WithBalancer sets the load-balancing policy by its registered name
// ("p2c", "wrr", grpc-go's "round_robin" or "pick_first", or your own). New fails if no
// balancer of that name is registered. Default: [DefaultBalancer].
func WithBalancer(name string) Option {
	return func(c *config) { c.balancer = name }
}

// WithKeepalive sets the client's keepalive parameters. Pinging more often
// than the server permits (or without streams, where it does not permit
// that) makes it close the connection with GOAWAY "too_many_pings".
// Default: ping a connection with open streams after [DefaultKeepaliveTime]
// idle, never one without streams (gRPC servers' default enforcement), and
// give up after [DefaultKeepaliveTimeout].
func WithKeepalive(p keepalive.ClientParameters) Option {
	return func(c *config) { c.keepalive = p }
}

// WithMaxRecvMsgSize sets the largest response message accepted, in bytes.
// Default: grpc-go's, 4 MiB.
func WithMaxRecvMsgSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.errorf("WithMaxRecvMsgSize: %d is not a positive size", n)
			return
		}
		c.maxRecv = n
	}
}

// WithMaxSendMsgSize sets the largest request message sent, in bytes.
// Default: grpc-go's, no limit below math.MaxInt32.
func WithMaxSendMsgSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			c.errorf("WithMaxSendMsgSize: %d is not a positive size", n)
			return
		}
		c.maxSend = n
	}
}

// WithUnaryInterceptor adds unary interceptors at slot s. They run inside
// the interceptor grpckit installs at that slot, if any, and in the order
// added. Use [SlotUser] for the innermost position.
func WithUnaryInterceptor(s Slot, i ...grpc.UnaryClientInterceptor) Option {
	return func(c *config) {
		if err := chain.Add(c.user.Unary, s, slotNames, i); err != nil {
			c.errorf("WithUnaryInterceptor: %w", err)
		}
	}
}

// WithStreamInterceptor adds stream interceptors at slot s, like
// [WithUnaryInterceptor] does for unary calls.
func WithStreamInterceptor(s Slot, i ...grpc.StreamClientInterceptor) Option {
	return func(c *config) {
		if err := chain.Add(c.user.Stream, s, slotNames, i); err != nil {
			c.errorf("WithStreamInterceptor: %w", err)
		}
	}
}

// WithOrder replaces the slot order, outermost first. It must name every
// slot exactly once; New fails otherwise. Default: [DefaultOrder].
func WithOrder(order ...Slot) Option {
	return func(c *config) { c.order = append([]Slot(nil), order...) }
}

// WithDialOptions passes options through to grpc.NewClient, after the
// builder's own, so they win where both set the same thing. Interceptors
// passed with grpc.WithChainUnaryInterceptor or WithChainStreamInterceptor
// run inside the whole grpckit chain; one passed with grpc.WithUnaryInterceptor
// or WithStreamInterceptor runs outside it (grpc-go puts that one first).
// [WithUnaryInterceptor] places interceptors precisely.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOpts = append(c.dialOpts, opts...) }
}
