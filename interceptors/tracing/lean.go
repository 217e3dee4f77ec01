package tracing

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/chain"
)

// instrumentation is the tracer's name.
const instrumentation = "github.com/grpckit/grpckit/interceptors/tracing"

// tracer starts spans with otelgrpc's span names, kinds, attributes and
// status (see the package doc).
type tracer struct {
	t trace.Tracer
	// roots: grpckit decides root calls (WithSampling); threshold is the
	// ratio scaled to 2^64, all means every root.
	roots     bool
	all       bool
	threshold uint64

	props  propagation.TextMapPropagator
	w3c    bool // props is the default W3C trace context and baggage
	server bool
	opts   []trace.SpanStartOption
}

func newTracer(opts []Option, server bool) *tracer {
	c := newConfig(opts)
	kind := trace.SpanKindClient
	if server {
		kind = trace.SpanKindServer
	}
	props := c.props
	if props == nil {
		props = Propagators()
	}
	t := &tracer{
		t:      c.tracerProvider().Tracer(instrumentation),
		props:  props,
		w3c:    c.props == nil,
		server: server,
		opts:   []trace.SpanStartOption{trace.WithSpanKind(kind)},
	}
	if c.roots >= 0 {
		t.roots = true
		t.all = c.roots == 1
		t.threshold = uint64(c.roots * (1 << 64))
	}
	return t
}

// servingUntraced reports whether ctx is that of a call being served
// without a trace (no span context): with WithSampling, a client treats
// such a call as decided not to be traced where it entered the process,
// and its nested calls follow that decision. It reads only ctx: no state
// is shared between interceptors or processes.
func servingUntraced(ctx context.Context) bool {
	return grpc.ServerTransportStreamFromContext(ctx) != nil
}

// sampleRoot draws the decision for a call without a parent.
func (t *tracer) sampleRoot() bool {
	return t.all || rand.Uint64() < t.threshold
}

// start starts the call's span: on the server from the caller's propagated
// context, on the client as a child of the caller's span, injecting its
// context into the outgoing metadata (also when it is not sampled, so that
// the next hop follows the decision).
func (t *tracer) start(ctx context.Context, fullMethod string) (context.Context, trace.Span) {
	// otelgrpc's span name: the method without its leading slash, and
	// rpc.method only for a method that has one.
	name := fullMethod
	qualified := len(name) > 0 && name[0] == '/'
	if qualified {
		name = name[1:]
	}
	if t.server {
		if t.w3c {
			ctx = extractW3C(ctx)
		} else {
			ctx = t.props.Extract(ctx, incomingCarrier{ctx})
		}
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		// With WithSampling, a call without a parent is a root that
		// grpckit decides, unless it is a client call made while serving
		// an untraced call: that call's decision holds for it.
		if t.roots && ((!t.server && servingUntraced(ctx)) || !t.sampleRoot()) {
			// Not sampled: nothing to build and, but for baggage,
			// nothing to send.
			if !t.server {
				ctx = t.injectBaggage(ctx)
			}
			return ctx, nil
		}
	}
	ctx, span := t.t.Start(ctx, name, t.opts...)
	if span.IsRecording() {
		if qualified {
			span.SetAttributes(semconv.RPCSystemNameGRPC, semconv.RPCMethod(name))
		} else {
			span.SetAttributes(semconv.RPCSystemNameGRPC)
		}
	}
	if !t.server && span.SpanContext().IsValid() {
		if t.w3c {
			ctx = injectW3C(ctx, span.SpanContext())
		} else {
			kv := &headerPairs{}
			kv.kv = kv.buf[:0]
			t.props.Inject(ctx, kv)
			if len(kv.kv) > 0 {
				ctx = metadata.AppendToOutgoingContext(ctx, kv.kv...)
			}
		}
	}
	return ctx, span
}

// injectBaggage propagates what ctx holds besides a trace: its baggage
// with the default propagators, whatever custom ones inject without a span
// context.
func (t *tracer) injectBaggage(ctx context.Context) context.Context {
	if t.w3c {
		b := baggage.FromContext(ctx)
		if b.Len() == 0 {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, baggageHeader, b.String())
	}
	kv := &headerPairs{}
	kv.kv = kv.buf[:0]
	t.props.Inject(ctx, kv)
	if len(kv.kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv.kv...)
}

// end records the outcome and ends a recording span; span is nil for an
// unsampled root (see WithSampling). On the client, p is the peer the
// call went to (grpc.Peer), nil when unknown; the server reads its own
// address from ctx.
func (t *tracer) end(ctx context.Context, span trace.Span, err error, p *peer.Peer) {
	if span == nil || !span.IsRecording() {
		return
	}
	// The status grpc-go sends, and hands otelgrpc: a non-status error
	// is Unknown, a context error Canceled or DeadlineExceeded.
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	var kv [3]attribute.KeyValue
	kv[0] = semconv.RPCResponseStatusCode(statusName(st.Code()))
	n := 1
	// server.address and server.port: the server's side of the
	// connection, as the server accepted it or the client reached it.
	var addr net.Addr
	if t.server {
		if p, ok := peer.FromContext(ctx); ok {
			addr = p.LocalAddr
		}
	} else if p != nil {
		addr = p.Addr
	}
	if addr != nil {
		n += serverAddr(kv[n:], addr.String())
	}
	span.SetAttributes(kv[:n]...)
	if isError(st.Code(), t.server) {
		span.SetStatus(otelcodes.Error, st.Message())
	}
	span.End()
}

// serverAddr writes server.address and, when hostport has a numeric port,
// server.port to kv, as otelgrpc does, and returns how many it wrote.
func serverAddr(kv []attribute.KeyValue, hostport string) int {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		kv[0] = semconv.ServerAddress(hostport)
		return 1
	}
	kv[0] = semconv.ServerAddress(host)
	pn, err := strconv.Atoi(port)
	if err != nil {
		return 1
	}
	kv[1] = semconv.ServerPort(pn)
	return 2
}

// statusNames are gRPC's canonical status code names, which otelgrpc
// records as rpc.response.status_code (codes.Code's String differs:
// "Canceled", "NotFound").
var statusNames = [...]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

func statusName(c codes.Code) string {
	if int(c) < len(statusNames) {
		return statusNames[c]
	}
	return "CODE(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// UnaryServerInterceptor traces unary calls.
func UnaryServerInterceptor(opts ...Option) grpc.UnaryServerInterceptor {
	return unaryServerStage(opts...).Interceptor()
}

// unaryServerStage is UnaryServerInterceptor as a stage, which the server
// builder chains without allocating (see internal/chain).
func unaryServerStage(opts ...Option) chain.Stage {
	t := newTracer(opts, true)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
		ctx, span := t.start(ctx, info.FullMethod)
		resp, err := next(ctx, req, info, handler)
		t.end(ctx, span, err, nil)
		return resp, err
	}
}

// StreamServerInterceptor traces streams, one span per stream.
func StreamServerInterceptor(opts ...Option) grpc.StreamServerInterceptor {
	t := newTracer(opts, true)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, span := t.start(ss.Context(), info.FullMethod)
		if ctx != ss.Context() {
			ss = &ctxServerStream{ServerStream: ss, ctx: ctx}
		}
		err := handler(srv, ss)
		t.end(ctx, span, err, nil)
		return err
	}
}

// UnaryClientInterceptor traces unary calls as the caller sees them: one
// span for the whole call, retries included.
func UnaryClientInterceptor(opts ...Option) grpc.UnaryClientInterceptor {
	t := newTracer(opts, false)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		ctx, span := t.start(ctx, method)
		if span == nil || !span.IsRecording() {
			return invoker(ctx, method, req, reply, cc, callOpts...)
		}
		p := new(peer.Peer)
		err := invoker(ctx, method, req, reply, cc, withPeer(callOpts, p)...)
		t.end(ctx, span, err, p)
		return err
	}
}

// StreamClientInterceptor traces streams. The span ends when the stream
// fails to open, when RecvMsg returns an error (io.EOF counts as OK), or
// when the single response of a client stream arrives. A stream the caller
// abandons without reading to the end leaves its span unended (unexported).
func StreamClientInterceptor(opts ...Option) grpc.StreamClientInterceptor {
	t := newTracer(opts, false)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
		ctx, span := t.start(ctx, method)
		if span == nil || !span.IsRecording() {
			return streamer(ctx, desc, cc, method, callOpts...)
		}
		ts := &tracedClientStream{t: t, ctx: ctx, span: span, serverStreams: desc.ServerStreams}
		s, err := streamer(ctx, desc, cc, method, withPeer(callOpts, &ts.peer)...)
		if err != nil {
			t.end(ctx, span, err, &ts.peer)
			return nil, err
		}
		ts.ClientStream = s
		return ts, nil
	}
}

// withPeer returns opts and grpc.Peer(p), leaving the caller's slice alone.
func withPeer(opts []grpc.CallOption, p *peer.Peer) []grpc.CallOption {
	return append(opts[:len(opts):len(opts)], grpc.Peer(p))
}

type ctxServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxServerStream) Context() context.Context { return s.ctx }

type tracedClientStream struct {
	grpc.ClientStream
	t             *tracer
	ctx           context.Context
	span          trace.Span
	peer          peer.Peer // filled in by grpc-go when the stream ends
	serverStreams bool
	done          atomic.Bool
}

func (s *tracedClientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	switch {
	case err == nil && s.serverStreams:
	case err == nil, errors.Is(err, io.EOF):
		s.finish(nil)
	default:
		s.finish(err)
	}
	return err
}

func (s *tracedClientStream) finish(err error) {
	if !s.done.Swap(true) {
		s.t.end(s.ctx, s.span, err, &s.peer)
	}
}

// isError follows OpenTelemetry's gRPC conventions: on the client every
// non-OK code is an error; on the server only those that mean the server
// failed.
func isError(c codes.Code, server bool) bool {
	if !server {
		return c != codes.OK
	}
	switch c {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

// incomingCarrier reads propagation headers from the incoming metadata
// without copying all of it (metadata.FromIncomingContext would).
type incomingCarrier struct{ ctx context.Context }

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set is never called: the carrier is only extracted from.
func (c incomingCarrier) Set(string, string) {}

// Values lets propagation.Baggage read every baggage header, as the W3C
// fast path does.
func (c incomingCarrier) Values(key string) []string {
	return metadata.ValueFromIncomingContext(c.ctx, key)
}

func (c incomingCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

// headerPairs collects injected headers as key, value pairs; buf holds the
// usual two (traceparent, tracestate or baggage) without growing.
type headerPairs struct {
	kv  []string
	buf [4]string
}

func (h *headerPairs) Get(key string) string {
	for i := 0; i+1 < len(h.kv); i += 2 {
		if h.kv[i] == key {
			return h.kv[i+1]
		}
	}
	return ""
}

func (h *headerPairs) Set(key, value string) { h.kv = append(h.kv, key, value) }

func (h *headerPairs) Keys() []string {
	keys := make([]string, 0, len(h.kv)/2)
	for i := 0; i < len(h.kv); i += 2 {
		keys = append(keys, h.kv[i])
	}
	return keys
}

// extractW3C is what [Propagators] extracts, read straight from the
// incoming metadata: the traceparent and tracestate headers parsed by
// otel's own TraceContext, and the baggage headers (all of them, joined).
func extractW3C(ctx context.Context) context.Context {
	if tp := metadata.ValueFromIncomingContext(ctx, traceparent); len(tp) > 0 {
		c := &w3cCarrier{traceparent: tp[0]}
		if ts := metadata.ValueFromIncomingContext(ctx, tracestate); len(ts) > 0 {
			c.tracestate = ts[0]
		}
		ctx = propagation.TraceContext{}.Extract(ctx, c)
	}
	if b := metadata.ValueFromIncomingContext(ctx, baggageHeader); len(b) > 0 {
		ctx = propagation.Baggage{}.Extract(ctx, &w3cCarrier{baggage: b})
	}
	return ctx
}

// injectW3C writes what [Propagators] injects for sc and the baggage of
// ctx, in one append to the outgoing metadata.
func injectW3C(ctx context.Context, sc trace.SpanContext) context.Context {
	var kv [6]string
	n := 0
	kv[n], kv[n+1] = traceparent, formatTraceparent(sc)
	n += 2
	if ts := sc.TraceState().String(); ts != "" {
		kv[n], kv[n+1] = tracestate, ts
		n += 2
	}
	if b := baggage.FromContext(ctx); b.Len() > 0 {
		kv[n], kv[n+1] = baggageHeader, b.String()
		n += 2
	}
	return metadata.AppendToOutgoingContext(ctx, kv[:n]...)
}

const (
	traceparent   = "traceparent"
	tracestate    = "tracestate"
	baggageHeader = "baggage"
)

// formatTraceparent formats sc as propagation.TraceContext does: version
// 00, and of the flags only those the specification defines.
func formatTraceparent(sc trace.SpanContext) string {
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	flags := [1]byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))}
	hex.Encode(b[53:55], flags[:])
	return string(b[:])
}

// w3cCarrier hands headers already read to otel's propagators.
type w3cCarrier struct {
	traceparent, tracestate string
	baggage                 []string
}

func (c *w3cCarrier) Get(key string) string {
	switch key {
	case traceparent:
		return c.traceparent
	case tracestate:
		return c.tracestate
	case baggageHeader:
		if len(c.baggage) > 0 {
			return c.baggage[0]
		}
	}
	return ""
}

// Values lets propagation.Baggage read every baggage header.
func (c *w3cCarrier) Values(key string) []string {
	if key == baggageHeader {
		return c.baggage
	}
	if v := c.Get(key); v != "" {
		return []string{v}
	}
	return nil
}

// Set is never called: the carrier is only extracted from.
func (c *w3cCarrier) Set(string, string) {}

func (c *w3cCarrier) Keys() []string { return []string{traceparent, tracestate, baggageHeader} }
