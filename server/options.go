package server

import (
	"errors"
	"runtime"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/shared"
)

// ErrNoCredentials is returned by [New] when no transport security was
// chosen: pass grpckit.WithTLS, grpckit.WithTransportCredentials or,
// knowingly (behind a mesh or a TLS-terminating proxy), grpckit.WithInsecure.
var ErrNoCredentials = errors.New("server: no transport credentials: use grpckit.WithTLS, grpckit.WithTransportCredentials or grpckit.WithInsecure")

// Option configures [New]: this package's options, and package grpckit's
// shared ones (logging, metrics, tracing, TLS, message sizes), which mean
// the same on a client. Options are applied in order; a later option
// overrides an earlier one of the same kind, except the interceptor
// options, which accumulate. Only this module implements Option.
type Option interface {
	ServerOption(shared.Target)
}

// option is a server-only option.
type option func(*config)

func (f option) ServerOption(t shared.Target) { f(t.(*config)) }

type config struct {
	common      shared.Common // grpckit's shared options
	keepalive   keepalive.ServerParameters
	enforcement keepalive.EnforcementPolicy
	maxStreams  uint32
	maxHeader   uint32
	connTimeout time.Duration
	streamWin   int32
	connWin     int32
	maxConns    int
	reflection  bool
	grpcAdmin   bool
	drainDelay  time.Duration // < 0: not set
	workers     int           // < 0: not set
	registrar   Registrar
	order       []Slot
	user        chain.Slots[grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor]
	grpcOpts    []grpc.ServerOption
	obs         obsConfig        // observability.go
	resilience  resilienceConfig // resilience.go
	auth        authConfig       // auth.go
	validation  validationConfig // validation.go
}

// Shared returns the shared part of the configuration.
func (c *config) Shared() *shared.Common { return &c.common }

// Defaults. The server permits pings every 10 s, also without streams, so
// that clients tuned for fast dead-connection detection are not cut off;
// grpckit's client pings far less by default (every 5 min, only with
// streams open), which every gRPC server's default policy accepts.
const (
	DefaultKeepaliveTime    = 60 * time.Second
	DefaultKeepaliveTimeout = 20 * time.Second
	DefaultMinPingInterval  = 10 * time.Second
	DefaultMaxRecvMsgSize   = 4 << 20
	// DefaultMaxConcurrentStreams bounds the calls one connection may have
	// open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS, the minimum RFC
	// 9113 recommends); a client that opens more is refused them, and gRPC
	// clients queue calls beyond it. grpc-go's own default is unlimited.
	DefaultMaxConcurrentStreams = 100
	// DefaultMaxHeaderListSize bounds the request metadata of one call, in
	// bytes as HTTP/2 counts them (SETTINGS_MAX_HEADER_LIST_SIZE). grpc-go's
	// own default is 16 MiB; grpc-java's is 8 KiB.
	DefaultMaxHeaderListSize = 16 << 10
	// DefaultConnectionTimeout bounds a new connection's handshake (TLS and
	// the HTTP/2 preface): a connection that sends nothing is closed after
	// it. grpc-go's own default is 120 s.
	DefaultConnectionTimeout = 10 * time.Second
	// DefaultStreamWindow is the fixed HTTP/2 flow-control window of each
	// stream: the most a client can make the server hold for a call whose
	// handler does not read. grpc-go's default grows it up to 16 MiB per
	// stream (BDP estimation), which lets one connection pin 1.6 GiB.
	DefaultStreamWindow = 256 << 10
	// DefaultConnWindow is the fixed HTTP/2 flow-control window of each
	// connection.
	DefaultConnWindow = 1 << 20
	// DefaultRegistrarDrainDelay is the drain delay of a server with a
	// registrar: time for clients' resolvers to see the deregistration.
	DefaultRegistrarDrainDelay = 2 * time.Second
)

func newConfig(opts []Option) (*config, error) {
	c := &config{
		common:      shared.Defaults(),
		keepalive:   keepalive.ServerParameters{Time: DefaultKeepaliveTime, Timeout: DefaultKeepaliveTimeout},
		enforcement: keepalive.EnforcementPolicy{MinTime: DefaultMinPingInterval, PermitWithoutStream: true},
		maxStreams:  DefaultMaxConcurrentStreams,
		maxHeader:   DefaultMaxHeaderListSize,
		connTimeout: DefaultConnectionTimeout,
		streamWin:   DefaultStreamWindow,
		connWin:     DefaultConnWindow,
		reflection:  true,
		drainDelay:  -1,
		workers:     -1,
		order:       DefaultOrder(),
		user: chain.New[grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor](
			int(numSlots)),
	}
	for _, o := range opts {
		if o != nil {
			o.ServerOption(c)
		}
	}
	if c.common.Creds == nil {
		c.common.Errs = append(c.common.Errs, ErrNoCredentials)
	}
	if c.common.MaxRecv == 0 {
		c.common.MaxRecv = DefaultMaxRecvMsgSize
	}
	if err := checkOrder(c.order); err != nil {
		c.common.Errs = append(c.common.Errs, err)
	}
	if c.workers < 0 {
		c.workers = runtime.GOMAXPROCS(0)
	}
	if c.drainDelay < 0 {
		c.drainDelay = 0
		if c.registrar != nil {
			c.drainDelay = DefaultRegistrarDrainDelay
		}
	}
	return c, c.common.Err()
}

func (c *config) errorf(format string, args ...any) {
	c.common.Errorf("server: "+format, args...)
}

// WithKeepalive sets the server's keepalive parameters. Default: ping an
// idle client after [DefaultKeepaliveTime], close it after
// [DefaultKeepaliveTimeout] without an answer; connections live forever.
func WithKeepalive(p keepalive.ServerParameters) Option {
	return option(func(c *config) { c.keepalive = p })
}

// WithKeepaliveEnforcement sets how often clients may ping. Default: at most
// every [DefaultMinPingInterval], also while no stream is open, more
// lenient than gRPC's default (5 min, only with streams) so that clients
// with faster keepalives are not cut off.
func WithKeepaliveEnforcement(p keepalive.EnforcementPolicy) Option {
	return option(func(c *config) { c.enforcement = p })
}

// WithMaxConcurrentStreams sets how many calls one connection may have open
// at once (n >= 1); the server refuses further streams (REFUSED_STREAM),
// and gRPC clients wait for a free one instead of sending them. Each open
// stream costs a goroutine and up to the stream window of buffered
// request data plus 64 KiB of queued response data (grpc-go's write quota).
// Default: [DefaultMaxConcurrentStreams].
func WithMaxConcurrentStreams(n uint32) Option {
	return option(func(c *config) {
		if n < 1 {
			c.errorf("WithMaxConcurrentStreams: %d: want n >= 1", n)
			return
		}
		c.maxStreams = n
	})
}

// WithMaxHeaderListSize sets the largest request metadata (header list)
// of one call, in bytes as HTTP/2 counts them (each field's name and value
// plus 32), and advertises it in the connection's settings. A gRPC client
// fails a call whose metadata is larger before sending it; a call that
// arrives with a larger header list is reset (that call only). A single
// header value longer than the limit breaks HPACK decoding, and grpc-go
// then closes that client's connection. Default: [DefaultMaxHeaderListSize].
func WithMaxHeaderListSize(n uint32) Option {
	return option(func(c *config) {
		if n < 1<<10 {
			c.errorf("WithMaxHeaderListSize: %d: want at least 1024 bytes", n)
			return
		}
		c.maxHeader = n
	})
}

// WithConnectionTimeout bounds a new connection's handshake (TLS and the
// HTTP/2 preface); a connection that has not completed it in d is closed.
// Default: [DefaultConnectionTimeout].
func WithConnectionTimeout(d time.Duration) Option {
	return option(func(c *config) {
		if d <= 0 {
			c.errorf("WithConnectionTimeout: %v: want d > 0", d)
			return
		}
		c.connTimeout = d
	})
}

// WithWindowSize sets the HTTP/2 flow-control windows, in bytes (each at
// least 64 KiB): stream bounds the request data buffered for one call
// whose handler has not read it, conn the data in flight on one
// connection. Together with [WithMaxConcurrentStreams] they bound what one
// connection can make the server hold: max streams × stream window. Larger
// windows help large transfers over long round trips. Fixed windows turn
// off grpc-go's window growth (BDP estimation). Default:
// [DefaultStreamWindow] and [DefaultConnWindow].
func WithWindowSize(stream, conn int32) Option {
	return option(func(c *config) {
		if stream < 64<<10 || conn < 64<<10 {
			c.errorf("WithWindowSize(%d, %d): want both at least 65536", stream, conn)
			return
		}
		c.streamWin, c.connWin = stream, conn
	})
}

// WithMaxConnections caps the connections served at once on each listener
// (0: no cap): once n are open, further ones wait in the listener's
// backlog until one closes (golang.org/x/net/netutil.LimitListener). Pair
// it with keepalive.ServerParameters.MaxConnectionIdle ([WithKeepalive])
// so that idle clients give their connection back. Default: no cap.
func WithMaxConnections(n int) Option {
	return option(func(c *config) {
		if n < 0 {
			c.errorf("WithMaxConnections: negative count %d", n)
			return
		}
		c.maxConns = n
	})
}

// WithGRPCAdmin registers grpc-go's admin services on the server
// (google.golang.org/grpc/admin): channelz, which lists every channel,
// subchannel, server and socket of the process with their call counts and
// states, and CSDS when the process links in xDS. grpcdebug and grpcurl
// (grpc.channelz.v1.Channelz) read them. Channelz names the process's peers
// and backends: turn it on for a port only operators reach (a client-only
// job can start a grpckit server with only this option on a loopback
// port). Default: off.
func WithGRPCAdmin(on bool) Option {
	return option(func(c *config) { c.grpcAdmin = on })
}

// WithReflection turns server reflection (v1 and v1alpha) on or off.
// Default: on, so grpcurl and grpcui work without .proto files.
func WithReflection(on bool) Option {
	return option(func(c *config) { c.reflection = on })
}

// WithDrainDelay sets how long [Server.Shutdown] keeps serving after health
// turns NOT_SERVING, so that load balancers and resolvers stop sending new
// calls before the server stops accepting them. Set it to at least the
// health-check interval of whatever routes traffic here. Default: 0, or
// [DefaultRegistrarDrainDelay] when the server has a registrar.
func WithDrainDelay(d time.Duration) Option {
	return option(func(c *config) {
		if d < 0 {
			c.errorf("WithDrainDelay: negative delay %v", d)
			return
		}
		c.drainDelay = d
	})
}

// WithStreamWorkers serves calls on a pool of n long-lived goroutines
// (grpc.NumStreamWorkers) instead of a new goroutine per call; when every
// worker is busy a call still gets a goroutine of its own, so the pool never
// queues calls. A worker's stack has grown to what the interceptor chain
// needs; a new goroutine starts small and copies its stack as it grows
// through the chain, which measured here cost a third of the production
// chain's CPU per call. 0 turns the pool off. Default: GOMAXPROCS.
func WithStreamWorkers(n int) Option {
	return option(func(c *config) {
		if n < 0 {
			c.errorf("WithStreamWorkers: negative count %d", n)
			return
		}
		c.workers = n
	})
}

// WithRegistrar announces the server to service discovery: Serve registers
// it once its listener is up and health is SERVING, Shutdown deregisters it
// first, before health turns NOT_SERVING and the drain delay starts, and
// Close deregisters it on its way out. Default: none.
func WithRegistrar(r Registrar) Option {
	return option(func(c *config) {
		if r == nil {
			c.errorf("WithRegistrar: nil registrar")
			return
		}
		c.registrar = r
	})
}

// WithUnaryInterceptor adds unary interceptors at slot s. They run inside
// the interceptor grpckit installs at that slot, if any, and in the order
// added. Use [SlotUser] for the innermost position.
func WithUnaryInterceptor(s Slot, i ...grpc.UnaryServerInterceptor) Option {
	return option(func(c *config) {
		if err := chain.Add(c.user.Unary, s, slotNames, i); err != nil {
			c.errorf("WithUnaryInterceptor: %w", err)
		}
	})
}

// WithStreamInterceptor adds stream interceptors at slot s, like
// [WithUnaryInterceptor] does for unary calls.
func WithStreamInterceptor(s Slot, i ...grpc.StreamServerInterceptor) Option {
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

// WithServerOptions passes options through to grpc.NewServer, after the
// builder's own, so they win where both set the same thing. Interceptors
// passed with grpc.ChainUnaryInterceptor or ChainStreamInterceptor run
// inside the whole grpckit chain; one passed with grpc.UnaryInterceptor or
// StreamInterceptor runs outside it (grpc-go puts that one first), panic
// recovery included, whatever else is configured.
// [WithUnaryInterceptor] places interceptors precisely.
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return option(func(c *config) { c.grpcOpts = append(c.grpcOpts, opts...) })
}
