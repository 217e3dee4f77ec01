package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/server"
)

// Option adds what [Run] serves.
type Option func(*runConfig)

type runConfig struct {
	servers []served
	https   []servedHTTP
	logger  *slog.Logger
	signals []os.Signal
	ready   func(Addrs)
	admin   []admin.Option
}

type served struct {
	srv  *server.Server
	addr string
}

type servedHTTP struct {
	h    http.Handler
	addr string
}

// WithServer serves srv on the configured gRPC address (Config.Addr), or
// on addr if it is not empty. Run calls Serve, and Shutdown on the way
// out.
func WithServer(srv *server.Server, addr string) Option {
	return func(c *runConfig) { c.servers = append(c.servers, served{srv, addr}) }
}

// WithHTTP serves h (package gateway's handler, say) on the configured
// HTTP address (Config.HTTPAddr), or on addr if it is not empty, with
// read, write and idle timeouts; it is shut down gracefully after the
// servers. Default: no HTTP port.
func WithHTTP(h http.Handler, addr string) Option {
	return func(c *runConfig) { c.https = append(c.https, servedHTTP{h, addr}) }
}

// WithLogger sets the logger of Run's own messages. Default: the
// configuration's logger on standard error ([Config.Logger]).
func WithLogger(l *slog.Logger) Option { return func(c *runConfig) { c.logger = l } }

// WithSignals sets the signals that start the graceful shutdown; a second
// one stops at once. Default: SIGINT and SIGTERM.
func WithSignals(sigs ...os.Signal) Option { return func(c *runConfig) { c.signals = sigs } }

// WithAdminOptions passes options to the admin handler. Default: none.
func WithAdminOptions(opts ...admin.Option) Option {
	return func(c *runConfig) { c.admin = append(c.admin, opts...) }
}

// WithReady calls f with the bound addresses once everything listens
// (tests and programs that listen on port 0 learn their ports from it).
func WithReady(f func(Addrs)) Option { return func(c *runConfig) { c.ready = f } }

// Addrs are the addresses Run listens on.
type Addrs struct {
	GRPC  []net.Addr
	HTTP  []net.Addr
	Admin net.Addr // nil without an admin address
}

// Timeouts of the HTTP servers Run starts for [WithHTTP].
const (
	HTTPReadHeaderTimeout = 10 * time.Second
	HTTPIdleTimeout       = 120 * time.Second
	HTTPMaxHeaderBytes    = 64 << 10
)

// Run serves the servers (at least one), the HTTP handlers and the admin
// endpoint until ctx ends, a shutdown signal arrives, or one of them fails,
// then shuts everything down gracefully within cfg.ShutdownTimeout: every
// server deregisters, turns NOT_SERVING, keeps serving for its drain delay
// (server.WithDrainDelay; Config.DrainDelay is meant for it), and stops
// once its calls are done (those that came through the HTTP handlers
// included); the HTTP servers accept requests for the drain delay too,
// then wait for theirs; the admin endpoint closes last. A second signal stops at once. Run binds every address
// before serving any, so a port in use fails fast. It returns nil after a
// clean shutdown, the error that stopped it otherwise.
func Run(ctx context.Context, cfg Config, opts ...Option) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	rc := runConfig{signals: []os.Signal{os.Interrupt, syscall.SIGTERM}}
	for _, o := range opts {
		if o != nil {
			o(&rc)
		}
	}
	if len(rc.servers) == 0 {
		return errors.New("app: Run needs at least one server (WithServer)")
	}
	log := rc.logger
	if log == nil {
		log = cfg.Logger(os.Stderr)
	}

	// Bind everything first.
	var lis []net.Listener
	closeAll := func() {
		for _, l := range lis {
			_ = l.Close()
		}
	}
	listen := func(addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("app: %w", err)
		}
		lis = append(lis, l)
		return l, nil
	}
	var addrs Addrs
	grpcLis := make([]net.Listener, len(rc.servers))
	for i, s := range rc.servers {
		addr := s.addr
		if addr == "" {
			addr = cfg.Addr
		}
		l, err := listen(addr)
		if err != nil {
			return err
		}
		grpcLis[i] = l
		addrs.GRPC = append(addrs.GRPC, l.Addr())
	}
	httpLis := make([]net.Listener, len(rc.https))
	for i, h := range rc.https {
		addr := h.addr
		if addr == "" {
			addr = cfg.HTTPAddr
		}
		if addr == "" {
			closeAll()
			return errors.New("app: WithHTTP without an address, and Config.HTTPAddr is empty")
		}
		l, err := listen(addr)
		if err != nil {
			return err
		}
		httpLis[i] = l
		addrs.HTTP = append(addrs.HTTP, l.Addr())
	}
	var adm *admin.Server
	if cfg.AdminAddr != "" {
		h, err := admin.New(append([]admin.Option{admin.WithLogger(log)}, rc.admin...)...)
		if err != nil {
			closeAll()
			return err
		}
		if adm, err = h.Listen(cfg.AdminAddr); err != nil {
			closeAll()
			return fmt.Errorf("app: %w", err)
		}
		addrs.Admin = adm.Addr()
	}

	// Serve.
	failed := make(chan error, len(rc.servers)+len(rc.https))
	var wg sync.WaitGroup
	for i, s := range rc.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.srv.Serve(grpcLis[i]); err != nil && !errors.Is(err, server.ErrServerClosed) {
				failed <- fmt.Errorf("app: serve gRPC on %s: %w", grpcLis[i].Addr(), err)
			}
		}()
	}
	hs := make([]*http.Server, len(rc.https))
	for i, h := range rc.https {
		hs[i] = &http.Server{Handler: h.h, ReadHeaderTimeout: HTTPReadHeaderTimeout, IdleTimeout: HTTPIdleTimeout,
			MaxHeaderBytes: HTTPMaxHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs[i].Serve(httpLis[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("app: serve HTTP on %s: %w", httpLis[i].Addr(), err)
			}
		}()
	}
	strs := func(as []net.Addr) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.String()
		}
		return out
	}
	attrs := []any{slog.Any("grpc", strs(addrs.GRPC))}
	if len(addrs.HTTP) > 0 {
		attrs = append(attrs, slog.Any("http", strs(addrs.HTTP)))
	}
	if addrs.Admin != nil {
		attrs = append(attrs, slog.String("admin", "http://"+addrs.Admin.String()+"/"))
	}
	// Signals are caught before the process says it is serving: a
	// supervisor that stops it right after readiness gets a graceful
	// shutdown, not the default exit.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, rc.signals...)
	defer signal.Stop(sigs)
	log.Info("serving", attrs...)
	if rc.ready != nil {
		rc.ready(addrs)
	}

	// Wait.
	var cause error
	select {
	case <-ctx.Done():
		log.Info("shutting down", slog.String("reason", context.Cause(ctx).Error()))
	case s := <-sigs:
		log.Info("shutting down", slog.String("signal", s.String()))
	case cause = <-failed:
		log.Error("shutting down", slog.String("error", cause.Error()))
	}

	// Shut down: servers, then HTTP, then admin; a second signal or the
	// timeout forces it.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	go func() {
		select {
		case s := <-sigs:
			log.Warn("second signal: stopping now", slog.String("signal", s.String()))
			cancel()
		case <-sctx.Done():
		}
	}()
	errs := []error{cause}
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var sw sync.WaitGroup
	for _, s := range rc.servers {
		sw.Add(1)
		go func() {
			defer sw.Done()
			if err := s.srv.Shutdown(sctx); err != nil {
				fail(fmt.Errorf("app: shutdown: %w", err))
				_ = s.srv.Close()
			}
		}()
	}
	// The HTTP servers keep accepting for the drain delay, as the gRPC
	// servers do, then wait for their requests; the servers' Shutdown
	// waits for the gRPC calls those requests make.
	for _, h := range hs {
		sw.Add(1)
		go func() {
			defer sw.Done()
			t := time.NewTimer(cfg.DrainDelay)
			select {
			case <-t.C:
			case <-sctx.Done():
				t.Stop()
			}
			if err := h.Shutdown(sctx); err != nil {
				fail(fmt.Errorf("app: HTTP shutdown: %w", err))
				_ = h.Close()
			}
		}()
	}
	sw.Wait()
	if adm != nil {
		_ = adm.Close()
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		log.Info("stopped")
	}
	return err
}
