package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"go.opentelemetry.io/otel/trace"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/calltype"
	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/promreg"
)

// numCodes is the number of canonical codes (OK through Unauthenticated);
// their handled counters are cached, others are looked up per call.
const numCodes = int(codes.Unauthenticated) + 1

// maxCachedMethods bounds the per-method cache: client method names come
// from the caller, so their number is not bounded by a service definition.
// Past the bound, calls resolve their series per call, as
// go-grpc-middleware does for every call.
const maxCachedMethods = 4096

// names are the metric names and help strings of one side.
type names struct {
	started, handled, received, sent, handling [2]string // name, help
}

var serverNames = names{
	started:  [2]string{"grpc_server_started_total", "Total number of RPCs started on the server."},
	handled:  [2]string{"grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure."},
	received: [2]string{"grpc_server_msg_received_total", "Total number of RPC stream messages received on the server."},
	sent:     [2]string{"grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server."},
	handling: [2]string{"grpc_server_handling_seconds", "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."},
}

var clientNames = names{
	started:  [2]string{"grpc_client_started_total", "Total number of RPCs started on the client."},
	handled:  [2]string{"grpc_client_handled_total", "Total number of RPCs completed by the client, regardless of success or failure."},
	received: [2]string{"grpc_client_msg_received_total", "Total number of RPC stream messages received by the client."},
	sent:     [2]string{"grpc_client_msg_sent_total", "Total number of gRPC stream messages sent by the client."},
	handling: [2]string{"grpc_client_handling_seconds", "Histogram of response latency (seconds) of the gRPC until it is finished by the application."},
}

var (
	labelNames     = []string{"grpc_type", "grpc_service", "grpc_method"}
	labelNamesCode = []string{"grpc_type", "grpc_service", "grpc_method", "grpc_code"}
)

// validate reports the configurations prometheus would panic on when it
// creates the first histogram, at the first call.
func (c config) validate() error {
	for i := 0; i+1 < len(c.buckets); i++ {
		if c.buckets[i] >= c.buckets[i+1] {
			return fmt.Errorf("%w: histogram buckets must be in increasing order", ErrInvalid)
		}
	}
	if _, ok := c.labels["le"]; ok {
		return fmt.Errorf(`%w: const label "le" is reserved for histogram buckets`, ErrInvalid)
	}
	return nil
}

// collector holds the series of one side (server or client): the same
// vectors, names, help strings and labels as go-grpc-middleware's
// ServerMetrics and ClientMetrics with a handling-time histogram, plus a
// per-method cache of their children.
type collector struct {
	started, handled, received, sent *prometheus.CounterVec
	handling                         *prometheus.HistogramVec
	bounds                           []float64 // the histogram's buckets' upper bounds

	// cache maps a full method name to its series, one copy-on-write map
	// per call type: readers load without locking or allocating.
	cache [calltype.Count]atomic.Pointer[map[string]*series]
	full  atomic.Bool // the cache holds maxCachedMethods series
	mu    sync.Mutex  // serializes cache writers
	n     int         // series in the cache; guarded by mu
}

func newCollector(n names, c config) *collector {
	counter := func(nh [2]string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: nh[0], Help: nh[1], ConstLabels: c.labels}, labels)
	}
	bounds := c.buckets
	if len(bounds) == 0 {
		bounds = prometheus.DefBuckets
	}
	return &collector{
		bounds:   bounds,
		started:  counter(n.started, labelNames),
		handled:  counter(n.handled, labelNamesCode),
		received: counter(n.received, labelNames),
		sent:     counter(n.sent, labelNames),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: n.handling[0], Help: n.handling[1], Buckets: c.buckets, ConstLabels: c.labels,
		}, labelNames),
	}
}

// register registers a new collector on reg, or returns the one already
// there, so that servers (or clients) sharing a registry share the series.
func register(reg prometheus.Registerer, n names, c config) (*collector, error) {
	col, err := promreg.Register(reg, newCollector(n, c))
	if err != nil {
		return nil, err
	}
	return col, nil
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.started.Describe(ch)
	c.handled.Describe(ch)
	c.received.Describe(ch)
	c.sent.Describe(ch)
	c.handling.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.started.Collect(ch)
	c.handled.Collect(ch)
	c.received.Collect(ch)
	c.sent.Collect(ch)
	c.handling.Collect(ch)
}

// series returns the series of a method and call type, from the cache when
// it holds them.
func (c *collector) series(full string, t calltype.Type) *series {
	if m := c.cache[t].Load(); m != nil {
		if s, ok := (*m)[full]; ok {
			return s
		}
	}
	return c.add(full, t)
}

func (c *collector) add(full string, t calltype.Type) *series {
	if c.full.Load() {
		return c.newSeries(full, t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cache[t].Load()
	var size int
	if old != nil {
		if s, ok := (*old)[full]; ok {
			return s
		}
		size = len(*old)
	}
	s := c.newSeries(full, t)
	if c.n >= maxCachedMethods {
		c.full.Store(true)
		return s
	}
	next := make(map[string]*series, size+1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[full] = s
	c.cache[t].Store(&next)
	c.n++
	return s
}

// labelValue makes v a valid label value: prometheus panics on invalid
// UTF-8, and client method names come from the caller.
func labelValue(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	return strings.ToValidUTF8(v, string(utf8.RuneError))
}

func (c *collector) newSeries(full string, t calltype.Type) *series {
	cm := interceptors.NewServerCallMeta(full, nil, nil) // go-grpc-middleware's split
	service, method := cm.Service, cm.Method
	s := &series{c: c, typ: t.String(), service: labelValue(service), method: labelValue(method), exBucket: make([]atomic.Int64, len(c.bounds)+1)}
	s.started = s.c.started.WithLabelValues(s.typ, s.service, s.method)
	return s
}

// series holds the children of one method and call type. The started
// counter is resolved when the series is created, by its first call; the
// others when first used, so that the same series exist as with
// go-grpc-middleware (which, for example, never creates msg_sent for a
// method whose calls all failed).
type series struct {
	c                    *collector
	typ, service, method string
	started              prometheus.Counter
	received, sent       atomic.Pointer[counterRef]
	handling             atomic.Pointer[observerRef]
	handled              [numCodes]atomic.Pointer[counterRef]
	// exNext is when the method's series may next take an exemplar (Unix
	// ns); see exemplar. exBucket is the same for each bucket of the
	// handling-time histogram (the last one +Inf); see bucketExemplar.
	exNext   atomic.Int64
	exBucket []atomic.Int64
}

// exemplarEvery is how often a method's series take a new exemplar from a
// sampled call. Prometheus keeps one exemplar per counter and per histogram
// bucket, the last, which a scrape every few seconds reads; building one
// costs client_golang about 13 allocations per series, 64 per traced unary
// call over the five series a call touches on each side. At most one call
// per method and second pays for them all; besides, each bucket of the
// handling-time histogram takes one from a sampled call that lands in it
// at most once a second (bucketExemplar), so that the slow buckets, where
// a trace is wanted most, get theirs from the slow calls.
const exemplarEvery = int64(time.Second)

// exemplar returns the trace id of a sampled call as an exemplar for s's
// series, at most once per exemplarEvery; nil otherwise (nothing is built
// for unsampled calls).
func (s *series) exemplar(ctx context.Context, now time.Time) prometheus.Labels {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsSampled() {
		return nil
	}
	n, next := now.UnixNano(), s.exNext.Load()
	if n < next || !s.exNext.CompareAndSwap(next, n+exemplarEvery) {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}

// bucketExemplar returns the handling-time histogram's exemplar for a call
// of sc that took d seconds and ended at end: ex when the call set the
// method's exemplars (ex, from exemplar), else the trace id of a sampled
// call when d's bucket took none for exemplarEvery; nil otherwise.
func (s *series) bucketExemplar(d float64, end time.Time, ex prometheus.Labels, sc trace.SpanContext) prometheus.Labels {
	if !sc.IsSampled() || len(s.exBucket) == 0 {
		return ex
	}
	slot := &s.exBucket[sort.SearchFloat64s(s.c.bounds, d)] // the first bucket with d <= its bound
	n := end.UnixNano()
	if ex != nil {
		slot.Store(n + exemplarEvery)
		return ex
	}
	if next := slot.Load(); n < next || !slot.CompareAndSwap(next, n+exemplarEvery) {
		return nil
	}
	return prometheus.Labels{"trace_id": sc.TraceID().String()}
}

type counterRef struct{ prometheus.Counter }
type observerRef struct{ prometheus.Observer }

func (s *series) receivedCounter() prometheus.Counter {
	if r := s.received.Load(); r != nil {
		return r.Counter
	}
	return s.resolve(&s.received, s.c.received)
}

func (s *series) sentCounter() prometheus.Counter {
	if r := s.sent.Load(); r != nil {
		return r.Counter
	}
	return s.resolve(&s.sent, s.c.sent)
}

// resolve looks a child up and caches it in slot; racing callers find the
// same child.
func (s *series) resolve(slot *atomic.Pointer[counterRef], vec *prometheus.CounterVec) prometheus.Counter {
	r := &counterRef{vec.WithLabelValues(s.typ, s.service, s.method)}
	slot.Store(r)
	return r.Counter
}

func (s *series) handlingObserver() prometheus.Observer {
	if r := s.handling.Load(); r != nil {
		return r.Observer
	}
	r := &observerRef{s.c.handling.WithLabelValues(s.typ, s.service, s.method)}
	s.handling.Store(r)
	return r.Observer
}

func (s *series) handledCounter(code codes.Code) prometheus.Counter {
	if int(code) >= numCodes {
		return s.c.handled.WithLabelValues(s.typ, s.service, s.method, code.String())
	}
	if r := s.handled[code].Load(); r != nil {
		return r.Counter
	}
	r := &counterRef{s.c.handled.WithLabelValues(s.typ, s.service, s.method, code.String())}
	s.handled[code].Store(r)
	return r.Counter
}

// done records the end of a call of sc: handled with its code, and its
// duration.
func (s *series) done(err error, start time.Time, ex prometheus.Labels, sc trace.SpanContext) {
	end := time.Now()
	d := end.Sub(start).Seconds()
	inc(s.handledCounter(codeOf(err)), ex)
	observe(s.handlingObserver(), d, s.bucketExemplar(d, end, ex, sc))
}

// initialize creates every series of the method at zero, as
// go-grpc-middleware's InitializeMetrics does.
func (s *series) initialize() {
	s.receivedCounter()
	s.sentCounter()
	s.handlingObserver()
	for code := range numCodes {
		s.handledCounter(codes.Code(code))
	}
}

// grpcStatus is what status.FromError looks for in an error.
type grpcStatus interface{ GRPCStatus() *status.Status }

// codeOf returns the status code of err as go-grpc-middleware does
// (status.FromError, then status.FromContextError), without building a
// status: a gRPC status's code, Canceled or DeadlineExceeded for context
// errors, Unknown otherwise.
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if gs, ok := err.(grpcStatus); ok {
		if s := gs.GRPCStatus(); s != nil {
			return s.Code()
		}
	} else {
		var gs grpcStatus
		if errors.As(err, &gs) {
			if s := gs.GRPCStatus(); s != nil {
				return s.Code()
			}
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

func inc(c prometheus.Counter, ex prometheus.Labels) {
	if ex != nil {
		if ea, ok := c.(prometheus.ExemplarAdder); ok {
			ea.AddWithExemplar(1, ex)
			return
		}
	}
	c.Inc()
}

func observe(o prometheus.Observer, v float64, ex prometheus.Labels) {
	if ex != nil {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, ex)
			return
		}
	}
	o.Observe(v)
}

// initializeMetrics creates the series of every method of srv at zero.
func (c *collector) initializeMetrics(srv reflection.ServiceInfoProvider) {
	for service, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			c.series("/"+service+"/"+m.Name, calltype.OfMethod(m)).initialize()
		}
	}
}

func (c *collector) unaryServer(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
	start := time.Now()
	s := c.series(info.FullMethod, calltype.Unary)
	ex := s.exemplar(ctx, start)
	inc(s.started, ex)
	inc(s.receivedCounter(), ex)
	resp, err := next(ctx, req, info, handler)
	if err == nil {
		inc(s.sentCounter(), ex)
	}
	s.done(err, start, ex, trace.SpanContextFromContext(ctx))
	return resp, err
}

func (c *collector) streamServer(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	s := c.series(info.FullMethod, calltype.OfStream(info.IsClientStream, info.IsServerStream))
	ex := s.exemplar(ss.Context(), start)
	inc(s.started, ex)
	err := handler(srv, &serverStream{ServerStream: ss, s: s, exSent: ex, exRecv: ex})
	s.done(err, start, ex, trace.SpanContextFromContext(ss.Context()))
	return err
}

// serverStream counts the messages of a server stream. Its first message
// each way carries the stream's exemplar, if it has one: the others would
// build it again for nothing (see exemplarEvery). SendMsg and RecvMsg may
// run at once; each has its own.
type serverStream struct {
	grpc.ServerStream
	s              *series
	exSent, exRecv prometheus.Labels
}

func (w *serverStream) SendMsg(m any) error {
	err := w.ServerStream.SendMsg(m)
	if err == nil {
		inc(w.s.sentCounter(), w.exSent)
		w.exSent = nil
	}
	return err
}

func (w *serverStream) RecvMsg(m any) error {
	err := w.ServerStream.RecvMsg(m)
	if err == nil {
		inc(w.s.receivedCounter(), w.exRecv)
		w.exRecv = nil
	}
	return err
}

func (c *collector) unaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	s := c.series(method, calltype.Unary)
	ex := s.exemplar(ctx, start)
	inc(s.started, ex)
	inc(s.sentCounter(), ex)
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		inc(s.receivedCounter(), ex)
	}
	s.done(err, start, ex, trace.SpanContextFromContext(ctx))
	return err
}

func (c *collector) streamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	start := time.Now()
	s := c.series(method, calltype.OfStream(desc.ClientStreams, desc.ServerStreams))
	ex := s.exemplar(ctx, start)
	inc(s.started, ex)
	cs, err := streamer(ctx, desc, cc, method, opts...)
	sc := trace.SpanContextFromContext(ctx)
	if err != nil {
		s.done(err, start, ex, sc)
		return nil, err
	}
	return &clientStream{ClientStream: cs, s: s, ex: ex, sc: sc, exSent: ex, exRecv: ex, start: start, serverStreams: desc.ServerStreams}, nil
}

// clientStream counts the messages of a client stream and records its end
// when go-grpc-middleware does: at the first failed RecvMsg (io.EOF counts
// as OK) of a server-streaming call, after every RecvMsg otherwise.
type clientStream struct {
	grpc.ClientStream
	s  *series
	ex prometheus.Labels // for the stream's end
	sc trace.SpanContext // the stream's trace
	// exSent and exRecv are the exemplar of the first message each way, as
	// in serverStream.
	exSent, exRecv prometheus.Labels
	start          time.Time
	serverStreams  bool
}

func (w *clientStream) SendMsg(m any) error {
	err := w.ClientStream.SendMsg(m)
	if err == nil {
		inc(w.s.sentCounter(), w.exSent)
		w.exSent = nil
	}
	return err
}

func (w *clientStream) RecvMsg(m any) error {
	err := w.ClientStream.RecvMsg(m)
	if err == nil {
		inc(w.s.receivedCounter(), w.exRecv)
		w.exRecv = nil
		if w.serverStreams {
			return nil
		}
	}
	end := err
	if w.serverStreams && errors.Is(err, io.EOF) {
		end = nil
	}
	w.s.done(end, w.start, w.ex, w.sc)
	return err
}

var _ prometheus.Collector = (*collector)(nil)
