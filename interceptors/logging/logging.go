package logging

import (
	"context"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpclogging "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/calltype"
	"github.com/grpckit/grpckit/internal/chain"
)

// Message is the message of every call line.
const Message = "finished call"

// Option configures the logging interceptors.
type Option func(*config)

type config struct {
	logger   *slog.Logger
	levels   func(codes.Code) slog.Level
	payloads bool
	health   bool
	now      func() time.Time

	handlers sync.Map // handlerKey → slog.Handler
	cached   atomic.Int32
}

// WithLogger sets the logger. Default: slog.Default() when the interceptor
// is built.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithLevels sets how a status code maps to a level. Default: [DefaultLevel].
func WithLevels(f func(codes.Code) slog.Level) Option {
	return func(c *config) {
		if f != nil {
			c.levels = f
		}
	}
}

// WithPayloads adds the request and response of unary calls to each line,
// under grpc.request and grpc.response. Default: off; payloads may hold
// personal data.
func WithPayloads(on bool) Option {
	return func(c *config) { c.payloads = on }
}

// WithLogHealth logs grpc.health.v1 and server reflection calls too.
// Default: off; load balancers' health checks would drown the log.
func WithLogHealth(on bool) Option {
	return func(c *config) { c.health = on }
}

// DefaultLevel maps OK to Info, codes that mean the caller erred (Canceled,
// InvalidArgument, NotFound, AlreadyExists, PermissionDenied,
// ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
// Unauthenticated) to Warn, and codes that mean the server or the network
// failed (Unknown, DeadlineExceeded, Unimplemented, Internal, Unavailable,
// DataLoss) to Error.
func DefaultLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK:
		return slog.LevelInfo
	case codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition,
		codes.Aborted, codes.OutOfRange, codes.Unauthenticated:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func newConfig(opts []Option) *config {
	c := &config{levels: DefaultLevel, now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

// notHealth selects every call but health checks and reflection.
var notHealth = selector.MatchFunc(func(_ context.Context, m interceptors.CallMeta) bool {
	return m.Service != "grpc.health.v1.Health" && !strings.HasPrefix(m.Service, "grpc.reflection.")
})

// maxLevel is the highest level any code maps to: when the logger does not
// take it, no call can be logged, and a call skips even the clock reads.
func (c *config) maxLevel() slog.Level {
	lvl := c.levels(codes.OK)
	for code := codes.OK; code <= codes.Unauthenticated; code++ {
		lvl = max(lvl, c.levels(code))
	}
	return lvl
}

// UnaryServerInterceptor logs each finished unary call.
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	return unaryServerStage(opts...).Interceptor()
}

// unaryServerStage is UnaryServerInterceptor as a stage, which the server
// builder chains without allocating (see internal/chain).
func unaryServerStage(opts ...Option) chain.Stage {
	c := newConfig(opts)
	hi := c.maxLevel()
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
		if !c.logger.Enabled(ctx, hi) || !c.health && !notHealth.Match(ctx, interceptors.NewServerCallMeta(info.FullMethod, nil, req)) {
			return next(ctx, req, info, handler)
		}
		start := c.now()
		resp, err := next(ctx, req, info, handler)
		c.log(ctx, "server", info.FullMethod, interceptors.Unary, start, err, req, resp, -1, -1)
		return resp, err
	}
}

// StreamServerInterceptor logs each finished stream, with the number of
// messages received and sent.
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	c := newConfig(opts)
	hi := c.maxLevel()
	i := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		if !c.logger.Enabled(ctx, hi) {
			return handler(srv, ss)
		}
		start := c.now()
		cs := &countingServerStream{ServerStream: ss}
		err := handler(srv, cs)
		c.log(ctx, "server", info.FullMethod, calltype.OfStream(info.IsClientStream, info.IsServerStream).GRPCType(), start, err, nil, nil, cs.recv.Load(), cs.sent.Load())
		return err
	}
	if c.health {
		return i
	}
	return selector.StreamServerInterceptor(i, notHealth)
}

// UnaryClientInterceptor logs each finished unary call as the caller sees it.
func UnaryClientInterceptor(opts ...Option) grpc.UnaryClientInterceptor {
	c := newConfig(opts)
	hi := c.maxLevel()
	i := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		if !c.logger.Enabled(ctx, hi) {
			return invoker(ctx, method, req, reply, cc, callOpts...)
		}
		start := c.now()
		err := invoker(ctx, method, req, reply, cc, callOpts...)
		var resp any
		if err == nil {
			resp = reply
		}
		c.log(ctx, "client", method, interceptors.Unary, start, err, req, resp, -1, -1)
		return err
	}
	if c.health {
		return i
	}
	return selector.UnaryClientInterceptor(i, notHealth)
}

// StreamClientInterceptor logs each finished stream as the caller sees it:
// when it fails to open, when RecvMsg returns an error (io.EOF counts as
// OK), or when a stream without server streaming completes.
func StreamClientInterceptor(opts ...Option) grpc.StreamClientInterceptor {
	c := newConfig(opts)
	hi := c.maxLevel()
	i := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		if !c.logger.Enabled(ctx, hi) {
			return streamer(ctx, desc, cc, method, callOpts...)
		}
		start := c.now()
		typ := calltype.OfStream(desc.ClientStreams, desc.ServerStreams).GRPCType()
		s, err := streamer(ctx, desc, cc, method, callOpts...)
		if err != nil {
			c.log(ctx, "client", method, typ, start, err, nil, nil, 0, 0)
			return nil, err
		}
		return &loggedClientStream{ClientStream: s, c: c, ctx: ctx, method: method, typ: typ, start: start, serverStreams: desc.ServerStreams}, nil
	}
	if c.health {
		return i
	}
	return selector.StreamClientInterceptor(i, notHealth)
}

// log writes the call's line if its level is enabled. recv and sent are
// message counts of streams, -1 for unary calls.
//
// The line goes straight to the handler, as slog.Logger.LogAttrs would
// send it but without the caller's program counter (runtime.Callers was a
// tenth of a logged call's CPU here; the source would be this function
// anyway), and the call's constant fields come pre-formatted from a
// per-method handler (see [config.handler]).
func (c *config) log(ctx context.Context, component, fullMethod string, typ interceptors.GRPCType, start time.Time, err error, req, resp any, recv, sent int64) {
	code := status.Code(err)
	lvl := c.levels(code)
	if !c.logger.Enabled(ctx, lvl) {
		return
	}
	end := c.now()
	r := slog.NewRecord(end, lvl, Message, 0)
	r.AddAttrs(
		slog.String("grpc.code", code.String()),
		// A string, as go-grpc-middleware writes it: slog's JSON handler
		// formats float values through encoding/json's reflection, which
		// measured here costs more than the rest of the line.
		slog.String("grpc.time_ms", strconv.FormatFloat(float64(end.Sub(start).Nanoseconds())/1e6, 'f', 3, 64)),
	)
	if component == "server" {
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			r.AddAttrs(slog.String("peer.address", addrString(p.Addr)))
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// Both ids in one allocation.
		var buf [48]byte
		tid, sid := sc.TraceID(), sc.SpanID()
		hex.Encode(buf[:32], tid[:])
		hex.Encode(buf[32:], sid[:])
		ids := string(buf[:])
		r.AddAttrs(slog.String("trace_id", ids[:32]), slog.String("span_id", ids[32:]))
	}
	if err != nil {
		r.AddAttrs(slog.String("grpc.error", status.Convert(err).Message()))
	}
	if recv >= 0 {
		r.AddAttrs(slog.Int64("grpc.msg_received", recv), slog.Int64("grpc.msg_sent", sent))
	}
	if c.payloads {
		if req != nil {
			r.AddAttrs(slog.Any("grpc.request", req))
		}
		if resp != nil {
			r.AddAttrs(slog.Any("grpc.response", resp))
		}
	}
	for it := grpclogging.ExtractFields(ctx).Iterator(); it.Next(); {
		k, v := it.At()
		r.AddAttrs(slog.Any(k, v))
	}
	if ctx == nil {
		ctx = context.Background()
	}
	_ = c.handler(component, fullMethod, typ).Handle(ctx, r)
}

// addrs caches the text of peer addresses: grpc-go hands every call on a
// connection the same net.Addr, and formatting a TCP address took three
// allocations. Direct-mapped by the address's identity; a collision only
// costs a formatting.
var (
	addrs    [256]atomic.Pointer[addrEntry]
	addrSeed = maphash.MakeSeed()
)

type addrEntry struct {
	addr net.Addr
	s    string
}

func addrString(a net.Addr) string {
	if reflect.TypeOf(a).Kind() != reflect.Pointer {
		// Only pointers are cached: their identity is the connection's,
		// and an address of a non-comparable type (a struct holding a
		// net.IP, say) would make the comparison below panic.
		return a.String()
	}
	slot := &addrs[maphash.Comparable(addrSeed, a)%uint64(len(addrs))]
	if e := slot.Load(); e != nil && e.addr == a {
		return e.s
	}
	s := a.String()
	slot.Store(&addrEntry{addr: a, s: s})
	return s
}

// maxCached bounds the per-method handlers: client method names come from
// callers, and a line for an uncached method only costs the pre-formatting.
const maxCached = 4096

type handlerKey struct {
	component, method string
	typ               interceptors.GRPCType
}

// handler returns the logger's handler with the fields every line of the
// method shares (protocol, component, service, method, type), which slog's
// own handlers format once in WithAttrs instead of on every line.
func (c *config) handler(component, fullMethod string, typ interceptors.GRPCType) slog.Handler {
	k := handlerKey{component, fullMethod, typ}
	if h, ok := c.handlers.Load(k); ok {
		return h.(slog.Handler)
	}
	cm := interceptors.NewServerCallMeta(fullMethod, nil, nil) // go-grpc-middleware's split
	service, method := cm.Service, cm.Method
	h := c.logger.Handler().WithAttrs([]slog.Attr{
		slog.String("protocol", "grpc"),
		slog.String(grpclogging.ComponentFieldKey, component),
		slog.String(grpclogging.ServiceFieldKey, service),
		slog.String(grpclogging.MethodFieldKey, method),
		slog.String(grpclogging.MethodTypeFieldKey, string(typ)),
	})
	if c.cached.Load() < maxCached {
		if _, loaded := c.handlers.LoadOrStore(k, h); !loaded {
			c.cached.Add(1)
		}
	}
	return h
}

// The counters are atomic: a handler may send and receive on two goroutines.
type countingServerStream struct {
	grpc.ServerStream
	recv, sent atomic.Int64
}

func (s *countingServerStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.recv.Add(1)
	}
	return err
}

func (s *countingServerStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.sent.Add(1)
	}
	return err
}

// loggedClientStream logs once, when the stream ends.
type loggedClientStream struct {
	grpc.ClientStream
	c             *config
	ctx           context.Context
	method        string
	typ           interceptors.GRPCType
	start         time.Time
	serverStreams bool
	recv, sent    atomic.Int64 // sending and receiving may run on two goroutines
	done          atomic.Bool
}

func (s *loggedClientStream) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == nil {
		s.sent.Add(1)
	}
	return err
}

func (s *loggedClientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.recv.Add(1)
		if !s.serverStreams {
			// A unary response ends a client stream.
			s.finish(nil)
		}
		return nil
	}
	if errors.Is(err, io.EOF) {
		s.finish(nil)
	} else {
		s.finish(err)
	}
	return err
}

func (s *loggedClientStream) finish(err error) {
	if s.done.Swap(true) {
		return
	}
	s.c.log(s.ctx, "client", s.method, s.typ, s.start, err, nil, nil, s.recv.Load(), s.sent.Load())
}
