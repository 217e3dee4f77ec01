package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	grpcadmin "google.golang.org/grpc/admin"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/interceptors/metrics"
	"github.com/grpckit/grpckit/interceptors/recovery"
	"github.com/grpckit/grpckit/internal/adminstate"
	"github.com/grpckit/grpckit/internal/chain"
)

// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown] or
// [Server.Close].
var ErrServerClosed = errors.New("server: server closed")

// Registrar announces a server to a service registry. grpckit's resolver
// packages provide registrars (etcd.NewRegistrar, consul.NewRegistrar); a
// server takes one with [WithRegistrar].
type Registrar interface {
	// Register announces the server, listening at addr (the listener's
	// address; a registrar configured with an advertised address uses that
	// instead). It returns without waiting for the registry: the registrar
	// keeps the registration alive, and repairs it with backoff when it is
	// lost, until Deregister. It fails only on invalid input.
	Register(ctx context.Context, addr string) error
	// Deregister withdraws the registration, waiting at most until ctx ends,
	// and stops the registrar's goroutines. It is idempotent.
	Deregister(ctx context.Context) error
}

// Server is a gRPC server assembled by [New]. It is a grpc.ServiceRegistrar:
// pass it to generated RegisterXxxServer functions before calling Serve.
type Server struct {
	cfg     *config
	builtin builtins
	grpc    *grpc.Server
	health  *health.Server
	metrics *metrics.Server

	adminHandler     http.Handler
	grpcAdminCleanup func() // nil without WithGRPCAdmin
	grpcAdminOnce    sync.Once
	admin            *admin.Server

	stopWatchOnce sync.Once
	stopWatch     chan struct{} // closed when health Watch streams must end

	id       int64
	activity adminstate.Activity
	source   *adminstate.ServerSource
	limiters []namedLimiter

	httpCalls sync.WaitGroup // calls in flight through ServeHTTP

	mu         sync.Mutex
	httpClosed bool     // ServeHTTP refuses new calls (Shutdown)
	addrs      []string // listeners' addresses, for the admin page
	serving    bool
	closed     bool
	services   []string
	explicit   map[string]bool // services whose status the user set
	// wrapRecovery is set when recovery is the only unary interceptor: it
	// then wraps each registered service instead (see register).
	wrapRecovery bool
}

// New builds a server. It fails if an option is invalid.
func New(opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		id:        adminstate.NextID(),
		cfg:       cfg,
		health:    health.NewServer(),
		stopWatch: make(chan struct{}),
		explicit:  map[string]bool{},
	}
	s.builtin.slots = chain.New[chain.Stage, grpc.StreamServerInterceptor](int(numSlots))
	if err := s.installBuiltins(); err != nil {
		return nil, err
	}
	s.grpc = grpc.NewServer(s.serverOptions()...)
	healthpb.RegisterHealthServer(registrar{s}, &healthService{Server: s.health, stop: s.stopWatch})
	if cfg.reflection {
		reflection.Register(registrar{s})
	}
	if cfg.grpcAdmin {
		cleanup, err := grpcadmin.Register(registrar{s})
		if err != nil {
			return nil, fmt.Errorf("server: WithGRPCAdmin: %w", err)
		}
		s.grpcAdminCleanup = cleanup
	}
	if err := s.startAdmin(); err != nil {
		if s.grpcAdminCleanup != nil {
			s.grpcAdminCleanup()
		}
		return nil, err
	}
	// Until Serve runs, the server is not ready.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.source = s.adminSource()
	adminstate.Servers.Add(s.source)
	return s, nil
}

// installBuiltins fills the slots with grpckit's own interceptors, which run
// outside the user's in the same slot.
func (s *Server) installBuiltins() error {
	b := &s.builtin
	b.add(SlotRecovery, chain.StageOf(recovery.UnaryServerInterceptor(recovery.WithLogger(s.cfg.common.Logger))),
		recovery.StreamServerInterceptor(recovery.WithLogger(s.cfg.common.Logger)))
	if err := s.installObservability(b); err != nil {
		return err
	}
	if err := s.installResilience(b); err != nil {
		return err
	}
	if err := s.installAuth(b); err != nil {
		return err
	}
	return s.installValidation(b)
}

// builtins collects what the builder installs: interceptors by slot (unary
// ones as stages, which chain without allocating), and server options
// (stats handlers).
type builtins struct {
	slots chain.Slots[chain.Stage, grpc.StreamServerInterceptor]
	opts  []grpc.ServerOption
}

// add appends a unary stage and a stream interceptor (either may be nil) at
// slot.
func (b *builtins) add(slot Slot, u chain.Stage, st grpc.StreamServerInterceptor) {
	if u != nil {
		b.slots.Unary[slot] = append(b.slots.Unary[slot], u)
	}
	if st != nil {
		b.slots.Stream[slot] = append(b.slots.Stream[slot], st)
	}
}

func (s *Server) serverOptions() []grpc.ServerOption {
	c := s.cfg
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(c.keepalive),
		grpc.KeepaliveEnforcementPolicy(c.enforcement),
		grpc.MaxRecvMsgSize(c.common.MaxRecv),
		grpc.MaxConcurrentStreams(c.maxStreams),
		grpc.MaxHeaderListSize(c.maxHeader),
		grpc.ConnectionTimeout(c.connTimeout),
		grpc.InitialWindowSize(c.streamWin),
		grpc.InitialConnWindowSize(c.connWin),
	}
	if c.common.Creds != nil {
		opts = append(opts, grpc.Creds(c.common.Creds))
	}
	if c.common.MaxSend > 0 {
		opts = append(opts, grpc.MaxSendMsgSize(c.common.MaxSend))
	}
	if c.workers > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(c.workers)))
	}
	// The user's unary interceptors join the chain of stages as they are,
	// at grpc-go's usual cost of a closure per call each.
	userUnary := make([][]chain.Stage, len(c.user.Unary))
	for slot, is := range c.user.Unary {
		for _, i := range is {
			userUnary[slot] = append(userUnary[slot], chain.FromInterceptor(i))
		}
	}
	u := merge(c.order, s.builtin.slots.Unary, userUnary)
	st := merge(c.order, s.builtin.slots.Stream, c.user.Stream)
	if len(u) == 1 && len(s.builtin.slots.Unary[SlotRecovery]) == 1 {
		// Recovery alone for unary calls: it wraps the services' handlers
		// instead (see recovery.WrapService), so that grpc-go allocates
		// nothing per call for it. Streams keep the interceptor (a cost
		// per stream, not per message), which also covers an
		// UnknownServiceHandler given through WithServerOptions.
		s.wrapRecovery = true
		u = nil
	}
	// The admin page's call counts come first, outside every slot, so
	// that they see every call and every rejection.
	u = append([]chain.Stage{s.activityStage()}, u...)
	st = append([]grpc.StreamServerInterceptor{s.activityStream}, st...)
	if len(u) > 0 {
		opts = append(opts, grpc.ChainUnaryInterceptor(chain.UnaryServer(u...)))
	}
	if len(st) > 0 {
		opts = append(opts, grpc.ChainStreamInterceptor(st...))
	}
	opts = append(opts, s.builtin.opts...)
	return append(opts, c.grpcOpts...)
}

// RegisterService registers a service implementation. It implements
// grpc.ServiceRegistrar; generated RegisterXxxServer functions call it. It
// panics if called after Serve, as registering then is a programming error
// that grpc-go would turn into a process exit.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving || s.closed {
		panic(fmt.Sprintf("server: RegisterService(%q) after Serve, Shutdown or Close", desc.ServiceName))
	}
	s.register(desc, impl)
	s.services = append(s.services, desc.ServiceName)
	s.health.SetServingStatus(desc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
}

// register registers on the grpc server, with recovery around the
// handlers when no interceptor provides it.
func (s *Server) register(desc *grpc.ServiceDesc, impl any) {
	if s.wrapRecovery {
		// Methods only: streams keep the recovery interceptor.
		methods := *desc
		methods.Streams = nil
		w := recovery.WrapService(&methods, recovery.WithLogger(s.cfg.common.Logger))
		w.Streams = desc.Streams
		desc = w
	}
	s.grpc.RegisterService(desc, impl)
}

// registrar registers the builder's own services (health, reflection)
// through register.
type registrar struct{ s *Server }

func (r registrar) RegisterService(desc *grpc.ServiceDesc, impl any) { r.s.register(desc, impl) }

func (r registrar) GetServiceInfo() map[string]grpc.ServiceInfo { return r.s.grpc.GetServiceInfo() }

// GetServiceInfo returns the registered services, as grpc.Server does.
func (s *Server) GetServiceInfo() map[string]grpc.ServiceInfo {
	return s.grpc.GetServiceInfo()
}

// SetServingStatus sets the health status reported for service ("" is the
// whole server). A status set before Serve is kept by Serve, which otherwise
// reports SERVING for every registered service. Once Shutdown or Close has
// begun, every service reports NOT_SERVING and further calls are ignored.
func (s *Server) SetServingStatus(service string, st healthpb.HealthCheckResponse_ServingStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.explicit[service] = true
	s.health.SetServingStatus(service, st)
}

// Serve accepts connections on lis and serves them until Shutdown or Close,
// and reports health SERVING while it does. It may be called for several
// listeners. It returns [ErrServerClosed] after Shutdown or Close, and the
// listener's error if accepting fails otherwise.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = lis.Close()
		return ErrServerClosed
	}
	first := !s.serving
	s.addrs = append(s.addrs, lis.Addr().String())
	if first {
		s.serving = true
		if s.metrics != nil {
			s.metrics.InitializeMetrics(s.grpc)
		}
		for _, name := range append([]string{""}, s.services...) {
			if !s.explicit[name] {
				s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
			}
		}
	}
	s.mu.Unlock()

	if first && s.cfg.registrar != nil {
		// The listener is bound: connections that arrive before Serve's
		// accept loop starts wait in its backlog.
		if err := s.cfg.registrar.Register(context.Background(), lis.Addr().String()); err != nil {
			_ = lis.Close()
			return fmt.Errorf("server: register: %w", err)
		}
	}

	if n := s.cfg.maxConns; n > 0 {
		lis = netutil.LimitListener(lis, n)
	}
	err := s.grpc.Serve(lis)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || err == nil || errors.Is(err, grpc.ErrServerStopped) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops the server gracefully: it deregisters from discovery (see
// [WithRegistrar]), health turns NOT_SERVING for every service, the server
// keeps serving for the drain delay (see
// [WithDrainDelay]) so that clients move away, then it stops accepting
// connections and calls, and waits for the calls in flight to finish. If ctx
// ends first, the remaining calls are cancelled and Shutdown returns ctx's
// error. Calling it again, or after Close, waits for the same stop.
func (s *Server) Shutdown(ctx context.Context) error {
	var regErr error
	if r := s.cfg.registrar; r != nil {
		regErr = r.Deregister(ctx)
	}
	s.beginClose()

	if d := s.cfg.drainDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.stop()
			return ctx.Err()
		}
	}

	// Calls that came through ServeHTTP (package gateway) are not waited
	// for by grpc-go's GracefulStop, which cancels them: wait for them
	// first, refusing new ones.
	if err := s.drainHTTP(ctx); err != nil {
		s.stop()
		return err
	}
	s.endWatches()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.grpc.GracefulStop()
	}()
	defer adminstate.Servers.Remove(s.source)
	select {
	case <-done:
		s.stopAdmin()
		return regErr
	case <-ctx.Done():
		s.grpc.Stop() // makes GracefulStop return
		<-done
		s.stopAdmin()
		return ctx.Err()
	}
}

// Close stops the server at once: listeners close and calls in flight are
// cancelled. A registrar gets at most [CloseDeregisterTimeout] to withdraw
// the registration (a lease or TTL check removes it otherwise). It is
// idempotent; it returns the registrar's error, if any.
func (s *Server) Close() error {
	s.beginClose()
	s.stop()
	if r := s.cfg.registrar; r != nil {
		ctx, cancel := context.WithTimeout(context.Background(), CloseDeregisterTimeout)
		defer cancel()
		return r.Deregister(ctx)
	}
	return nil
}

// CloseDeregisterTimeout bounds how long [Server.Close] waits for the
// registrar.
const CloseDeregisterTimeout = time.Second

func (s *Server) beginClose() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.health.Shutdown() // every service NOT_SERVING, later updates ignored
}

func (s *Server) stop() {
	s.endWatches()
	s.grpc.Stop()
	s.stopAdmin()
	adminstate.Servers.Remove(s.source)
}

// endWatches ends the health Watch streams, which would otherwise keep
// GracefulStop waiting for as long as clients watch.
func (s *Server) endWatches() {
	s.stopWatchOnce.Do(func() { close(s.stopWatch) })
}

// healthService ends Watch streams when the server stops.
type healthService struct {
	*health.Server
	stop <-chan struct{}
}

func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return h.Server.Watch(req, &watchStream{Health_WatchServer: stream, ctx: ctx})
}

type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w *watchStream) Context() context.Context { return w.ctx }

// ServeHTTP serves a gRPC call arriving through Go's net/http server
// (grpc.Server.ServeHTTP, HTTP/2 only) with the server's whole chain, so
// that package gateway, or an h2c server sharing a port with other
// handlers, reaches the same services. grpc-go's own transport (Serve) is
// faster and supports more (keepalive enforcement, stream limits are
// net/http's); prefer Serve for gRPC clients.
//
// [Server.Shutdown] waits for the calls in flight through ServeHTTP after
// its drain delay, and refuses later ones with HTTP 503, before it stops
// the gRPC server (whose own graceful stop would cancel them).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.httpClosed {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "14") // Unavailable
		w.Header().Set("Grpc-Message", "server is shutting down")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.httpCalls.Add(1)
	s.mu.Unlock()
	defer s.httpCalls.Done()
	s.grpc.ServeHTTP(w, r)
}

// drainHTTP refuses new ServeHTTP calls and waits for those in flight, or
// until ctx ends.
func (s *Server) drainHTTP(ctx context.Context) error {
	s.mu.Lock()
	s.httpClosed = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.httpCalls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
