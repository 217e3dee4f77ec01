package recovery

import (
	"context"
	"fmt"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"log/slog"
	"runtime"

	grpcrecovery "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/chain"
)

// Message is the status message a client receives for a recovered panic.
const Message = "internal error"

// Option configures the recovery interceptors.
type Option func(*config)

type config struct {
	logger *slog.Logger
}

// WithLogger sets the logger that receives the panic value and stack.
// Default: slog.Default() at the time the interceptor is built.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

// UnaryServerInterceptor recovers panics in unary handlers and returns
// codes.Internal with [Message].
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	return unaryServerStage(opts...).Interceptor()
}

// unaryServerStage is UnaryServerInterceptor as a stage, which the server
// builder chains without allocating (see internal/chain).
func unaryServerStage(opts ...Option) chain.Stage {
	c := newConfig(opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (resp any, err error) {
		defer c.guard(ctx, &err)
		return next(ctx, req, info, handler)
	}
}

// StreamServerInterceptor recovers panics in stream handlers and returns
// codes.Internal with [Message].
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	c := newConfig(opts)
	return grpcrecovery.StreamServerInterceptor(grpcrecovery.WithRecoveryHandlerContext(c.handle))
}

// guard, deferred directly, turns a panic of the deferring function into
// *err (its other results stay zero: a panicking function sets none).
func (c *config) guard(ctx context.Context, err *error) {
	if p := recover(); p != nil {
		*err = c.handle(ctx, p)
	}
}

// handle runs inside the deferred recover, so the stack it captures still
// holds the panicking frames.
func (c *config) handle(ctx context.Context, p any) error {
	buf := make([]byte, 64<<10)
	buf = buf[:runtime.Stack(buf, false)]
	service, method := "", ""
	if m, ok := grpc.Method(ctx); ok {
		cm := interceptors.NewServerCallMeta(m, nil, nil)
		service, method = cm.Service, cm.Method
	}
	c.logger.LogAttrs(ctx, slog.LevelError, "grpc handler panicked",
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("panic", fmt.Sprint(p)),
		slog.String("stack", string(buf)),
	)
	return status.Error(codes.Internal, Message)
}

// WrapService returns a copy of desc whose method and stream handlers
// recover panics as the interceptors do, for a server that installs no
// interceptor at all: grpc-go allocates the call's UnaryServerInfo and
// handler closure (two allocations per unary call) as soon as any
// interceptor is installed, and the server builder uses this instead when
// recovery would be its only unary interceptor. desc itself is not
// modified.
func WrapService(desc *grpc.ServiceDesc, opts ...Option) *grpc.ServiceDesc {
	c := newConfig(opts)
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		m.Handler = func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (resp any, err error) {
			defer c.guard(ctx, &err)
			return h(srv, ctx, dec, interceptor)
		}
		d.Methods[i] = m
	}
	d.Streams = make([]grpc.StreamDesc, len(desc.Streams))
	for i, st := range desc.Streams {
		h := st.Handler
		st.Handler = func(srv any, stream grpc.ServerStream) (err error) {
			defer c.guard(stream.Context(), &err)
			return h(srv, stream)
		}
		d.Streams[i] = st
	}
	return &d
}
