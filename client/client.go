package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/interceptors/timeout"
	"github.com/grpckit/grpckit/internal/adminstate"
	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/streamlimit"
)

// Conn is a client connection built by [New]. It embeds *grpc.ClientConn,
// so generated NewXxxClient functions take it, and adds an idempotent Close
// that also releases what the builder started.
type Conn struct {
	*grpc.ClientConn

	closers   []func() error
	registry  grpckit.Registry
	admin     adminParts
	closeOnce sync.Once
	closeErr  error
}

// New builds a connection to target, a gRPC target URI such as
// "dns:///host:port", "passthrough:///127.0.0.1:8080" or a grpckit resolver's
// scheme. It does not wait for a connection; it fails only on invalid
// options or an unparsable target.
func New(target string, opts ...Option) (*Conn, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if balancer.Get(cfg.balancer) == nil {
		return nil, fmt.Errorf("client: WithBalancer: no balancer named %q is registered", cfg.balancer)
	}
	if cfg.poolMax > 1 && !ownsBalancerState(cfg.balancer) {
		return nil, fmt.Errorf("client: WithConnPool needs one of grpckit's balancers, not %q", cfg.balancer)
	}
	b := &builtins{slots: chain.New[grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor](int(numSlots))}
	b.admin = adminParts{id: adminstate.NextID(), balancer: cfg.balancer, activity: new(adminstate.Activity)}
	if cfg.timeout > 0 {
		b.add(SlotTimeout, timeout.UnaryClientInterceptor(cfg.timeout), nil)
	}
	if err := installObservability(cfg, b); err != nil {
		b.close()
		return nil, err
	}
	if err := installResilience(cfg, b, target); err != nil {
		b.close()
		return nil, err
	}
	if err := installValidation(cfg, b); err != nil {
		b.close()
		return nil, err
	}
	lbConfig := map[string]any{}
	creds := cfg.common.Creds
	if ownsBalancerState(cfg.balancer) {
		lbConfig["grpckitClient"] = b.admin.id // ties the balancer's state to this Conn
		// WithConnPool(1, 1) is one connection per endpoint: no pool.
		if cfg.poolMax > 1 {
			lbConfig["pool"] = map[string]int{"conns": cfg.poolConns, "maxConns": cfg.poolMax}
			creds = streamlimit.Credentials(creds) // learns each server's stream limit
		}
	}
	sc, err := json.Marshal(map[string]any{
		"loadBalancingConfig": []map[string]any{{cfg.balancer: lbConfig}},
	})
	if err != nil {
		return nil, fmt.Errorf("client: service config: %w", err)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(cfg.keepalive),
		grpc.WithDefaultServiceConfig(string(sc)),
	}
	if cfg.streamWin > 0 {
		dial = append(dial, grpc.WithInitialWindowSize(cfg.streamWin), grpc.WithInitialConnWindowSize(cfg.connWin))
	}
	var callOpts []grpc.CallOption
	if n := cfg.common.MaxRecv; n > 0 {
		callOpts = append(callOpts, grpc.MaxCallRecvMsgSize(n))
	}
	if n := cfg.common.MaxSend; n > 0 {
		callOpts = append(callOpts, grpc.MaxCallSendMsgSize(n))
	}
	if len(callOpts) > 0 {
		dial = append(dial, grpc.WithDefaultCallOptions(callOpts...))
	}
	// The admin page's call counts come first, outside every slot, so
	// that they see every call and every rejection. One interceptor
	// composed once: grpc-go's own chaining allocates a closure per
	// interceptor on every call.
	u := append([]grpc.UnaryClientInterceptor{activityUnary(b.admin.activity)}, merge(cfg.order, b.slots.Unary, cfg.user.Unary)...)
	dial = append(dial, grpc.WithChainUnaryInterceptor(chain.UnaryClient(u)))
	s := append([]grpc.StreamClientInterceptor{activityStream(b.admin.activity)}, merge(cfg.order, b.slots.Stream, cfg.user.Stream)...)
	dial = append(dial, grpc.WithChainStreamInterceptor(chain.StreamClient(s)))
	dial = append(dial, b.dial...)
	dial = append(dial, tokenDialOptions(cfg)...)
	dial = append(dial, cfg.dialOpts...)
	cc, err := grpc.NewClient(target, dial...)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Conn{ClientConn: cc, closers: b.closers, registry: cfg.common.Registry, admin: b.admin}
	c.admin.source = c.adminSource()
	adminstate.Clients.Add(c.admin.source)
	return c, nil
}

// builtins collects what the builder installs: interceptors by slot, dial
// options (stats handlers), and what Close must release.
type builtins struct {
	slots   chain.Slots[grpc.UnaryClientInterceptor, grpc.StreamClientInterceptor]
	dial    []grpc.DialOption
	closers []func() error
	admin   adminParts
}

// add appends a unary and a stream interceptor (either may be nil) at slot.
func (b *builtins) add(slot Slot, u grpc.UnaryClientInterceptor, st grpc.StreamClientInterceptor) {
	if u != nil {
		b.slots.Unary[slot] = append(b.slots.Unary[slot], u)
	}
	if st != nil {
		b.slots.Stream[slot] = append(b.slots.Stream[slot], st)
	}
}

// close releases what was installed, last first.
func (b *builtins) close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	return errors.Join(errs...)
}

// Close closes the connection; calls in flight fail with codes.Canceled.
// It is idempotent: later calls return the first call's result.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		adminstate.Clients.Remove(c.admin.source)
		err := c.ClientConn.Close()
		b := builtins{closers: c.closers}
		c.closeErr = errors.Join(err, b.close())
	})
	return c.closeErr
}

// ErrConnClosed is returned by [Conn.WaitForReady] once the connection is
// closed.
var ErrConnClosed = errors.New("client: connection closed")

// WaitForReady starts connecting if the connection is idle and waits until
// it is ready, closed, or ctx ends.
func (c *Conn) WaitForReady(ctx context.Context) error {
	c.Connect()
	for {
		s := c.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return ErrConnClosed
		case connectivity.Idle:
			c.Connect()
		}
		if !c.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
}
