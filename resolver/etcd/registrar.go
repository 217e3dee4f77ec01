package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/resolver/internal/registration"
)

// ErrRegistered is returned by [Registrar.Register] when called twice or
// after Deregister.
var ErrRegistered = errors.New("etcd: registrar already used")

// errLeaseLost ends a registration session.
var errLeaseLost = errors.New("etcd: lease lost")

// Registrar keeps a server registered in etcd: the key
// <prefix><service>/<instance-id> holds the server's endpoint as JSON,
// attached to a lease kept alive while the server lives. It implements
// server.Registrar; pass it to server.WithRegistrar.
//
// A lost registration is repaired, with backoff, for as long as the server
// lives: a lease that expired (etcd restarted, or unreachable for longer
// than the TTL) is granted again and the key put again; a key deleted by
// hand is put back at once.
type Registrar struct {
	c       *clientv3.Client
	service string
	cfg     registrarConfig

	mu     sync.Mutex
	used   bool
	closed bool
	key    string
	value  string
	lease  clientv3.LeaseID // lease of the last successful put
	cancel context.CancelFunc
	done   chan struct{}
	status registration.Tracker
}

// Status returns the registration's state, for admin pages.
func (r *Registrar) Status() resolver.Registration {
	st := r.status.Status()
	if st.Key == "" {
		st.Registry, st.Service, st.Key = "etcd", r.service, r.Key()
	}
	return st
}

// NewRegistrar returns a registrar for service on client. It fails on an
// invalid service name or option. The client stays the caller's: close it
// after the server.
func NewRegistrar(client *clientv3.Client, service string, opts ...RegistrarOption) (*Registrar, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", ErrBadOption)
	}
	if err := resolver.ValidateService(service); err != nil {
		return nil, err
	}
	cfg := registrarConfig{
		common: common{prefix: DefaultPrefix, logger: slog.Default()},
		ttl:    10 * time.Second,
	}
	for _, o := range opts {
		o.applyRegistrar(&cfg)
	}
	if err := validPrefix(cfg.prefix); err != nil {
		return nil, err
	}
	if cfg.ttl < time.Second || cfg.ttl%time.Second != 0 {
		return nil, fmt.Errorf("%w: TTL %v must be a whole number of seconds, at least 1s", ErrBadOption, cfg.ttl)
	}
	if cfg.id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.id = hex.EncodeToString(b[:])
	}
	if err := resolver.ValidateService(cfg.id); err != nil {
		return nil, fmt.Errorf("%w: instance id: %v", ErrBadOption, err)
	}
	if cfg.addr != "" {
		if err := (resolver.Endpoint{Addr: cfg.addr}).Validate(); err != nil {
			return nil, fmt.Errorf("%w: WithAddress: %v", ErrBadOption, err)
		}
	}
	return &Registrar{c: client, service: service, cfg: cfg}, nil
}

// Key returns the key the registrar writes.
func (r *Registrar) Key() string { return r.cfg.prefix + r.service + "/" + r.cfg.id }

// Register starts keeping addr (or the WithAddress address) registered.
// It returns at once; it fails only on an address that cannot be dialled
// (an unspecified host such as "[::]:8080" needs WithAddress) or when
// called twice.
func (r *Registrar) Register(_ context.Context, addr string) error {
	if r.cfg.addr != "" {
		addr = r.cfg.addr
	}
	e := resolver.Endpoint{Addr: addr, Weight: r.cfg.weight, Zone: r.cfg.zone, Version: r.cfg.version, Metadata: r.cfg.metadata}
	if err := e.Validate(); err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(addr); net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		return fmt.Errorf("%w: address %q is unspecified; use etcd.WithAddress", ErrBadOption, addr)
	}
	value, err := encodeEndpoint(e)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used {
		return ErrRegistered
	}
	r.used = true
	r.key, r.value = r.Key(), value
	r.status.Init("etcd", r.service, r.key, addr)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(ctx)
	return nil
}

// errDeregistered is a registration's state after Deregister.
var errDeregistered = errors.New("deregistered")

// RevokeTimeout bounds how long [Registrar.Deregister] waits for etcd to
// revoke the lease; if etcd does not answer, the key expires with its lease.
const RevokeTimeout = 2 * time.Second

// Deregister stops keeping the registration alive and revokes its lease,
// which deletes the key, waiting at most until ctx ends or [RevokeTimeout].
// It is idempotent.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.mu.Lock()
	if !r.used || r.closed {
		r.closed, r.used = true, true
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.cancel()
	done := r.done
	r.mu.Unlock()
	<-done
	r.status.Down(errDeregistered)

	r.mu.Lock()
	lease := r.lease
	r.lease = 0
	r.mu.Unlock()
	if lease == 0 {
		return nil
	}
	// An unreachable etcd must not hold up the server's shutdown: the lease
	// expires on its own within the TTL.
	ctx, cancel := context.WithTimeout(ctx, RevokeTimeout)
	defer cancel()
	if _, err := r.c.Revoke(ctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcd: deregister %s: %w", r.key, err)
	}
	return nil
}

func (r *Registrar) run(ctx context.Context) {
	defer close(r.done)
	log := r.cfg.logger.With(slog.String("registrar.key", r.key))
	for attempt := 0; ; {
		start := time.Now()
		err := r.session(ctx, log)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > r.cfg.ttl {
			attempt = 0
		}
		r.status.Down(err)
		log.LogAttrs(context.Background(), slog.LevelWarn, "etcd: registration lost, registering again",
			slog.String("error", err.Error()), slog.Int("attempt", attempt))
		if !resolver.Sleep(ctx, r.cfg.backoff.Delay(attempt)) {
			return
		}
		reconnectNow(r.c)
		attempt++
	}
}

// session grants a lease, puts the key, and keeps both alive until the
// lease is lost or ctx ends. It puts the key back if it is deleted.
func (r *Registrar) session(ctx context.Context, log *slog.Logger) error {
	opCtx, opCancel := context.WithTimeout(ctx, r.cfg.ttl)
	defer opCancel()
	grant, err := r.c.Grant(opCtx, int64(r.cfg.ttl/time.Second))
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	put, err := r.c.Put(opCtx, r.key, r.value, clientv3.WithLease(grant.ID))
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	r.mu.Lock()
	r.lease = grant.ID
	r.mu.Unlock()
	r.status.Up()
	log.LogAttrs(context.Background(), slog.LevelDebug, "etcd: registered", slog.Int64("registrar.lease", int64(grant.ID)))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ka, err := r.c.KeepAlive(sctx, grant.ID)
	if err != nil {
		return fmt.Errorf("keepalive: %w", err)
	}
	wch := r.c.Watch(sctx, r.key, clientv3.WithRev(put.Header.Revision+1))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-ka:
			if !ok {
				return errLeaseLost
			}
		case wr, ok := <-wch:
			if !ok {
				return errors.New("watch of own key closed")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("watch of own key: %w", err)
			}
			for _, ev := range wr.Events {
				if ev.Type != mvccpb.DELETE {
					continue
				}
				log.LogAttrs(context.Background(), slog.LevelWarn, "etcd: registration key deleted, putting it back")
				pctx, pcancel := context.WithTimeout(ctx, r.cfg.ttl)
				_, err := r.c.Put(pctx, r.key, r.value, clientv3.WithLease(grant.ID))
				pcancel()
				if err != nil {
					return fmt.Errorf("put back: %w", err)
				}
			}
		}
	}
}
