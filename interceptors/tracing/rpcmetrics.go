package tracing

import (
	"context"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// rpcMetrics is otelgrpc's stats handler for metrics only, as otelgrpc
// v0.72.0 records them by default (semantic conventions v1.43.0): one
// histogram, rpc.server.call.duration or rpc.client.call.duration in
// seconds, under otelgrpc's instrumentation scope, with its buckets and
// attributes: rpc.method and rpc.system.name; on the client the
// server.address and server.port the attempt reached; then
// rpc.response.status_code and, for a failure, error.type. A test feeds
// both the same events and compares what they record.
//
// It records the same data for less: otelgrpc builds the attribute list and
// its set on every call, and copies the call's metadata to run the global
// propagators and a no-op tracer for spans it does not keep. Here a call
// costs a small struct in its context; the attribute sets are built once
// per method, status code and server address, and kept.
type rpcMetrics struct {
	dur    metric.Float64Histogram
	client bool

	// sets maps a call's method, code and server address to its recording
	// options. It is copied on write (reads take no lock); mu orders the
	// writers. It holds at most maxSets: then it starts over, so that
	// neither method names a client makes up (on a server with an unknown
	// service handler) nor connections coming and going grow it.
	sets atomic.Pointer[map[setKey][]metric.RecordOption]
	mu   sync.Mutex
}

// maxSets bounds rpcMetrics.sets.
const maxSets = 1024

// setKey is what a call's attribute set depends on. addr is the server's
// address as the client's transport holds it, one pointer per connection
// (keyAddr), or its text.
type setKey struct {
	method string
	code   codes.Code
	addr   net.Addr
}

// rpcCall is a call's state between its events.
type rpcCall struct {
	method string
	addr   net.Addr // client: the server the attempt reached
}

type rpcCallKey struct{}

// semconvDefault reports whether otelgrpc records its default metric: not
// when OTEL_SEMCONV_STABILITY_OPT_IN asks for the old conventions too
// ("rpc/dup") or instead ("rpc/old"), which [ServerHandler] and
// [ClientHandler] then leave to otelgrpc itself.
func semconvDefault() bool {
	for p := range strings.SplitSeq(os.Getenv("OTEL_SEMCONV_STABILITY_OPT_IN"), ",") {
		if p = strings.TrimSpace(p); p == "rpc/dup" || p == "rpc/old" {
			return false
		}
	}
	return true
}

func newRPCMetrics(mp metric.MeterProvider, client bool) *rpcMetrics {
	meter := mp.Meter(otelgrpc.ScopeName, metric.WithInstrumentationVersion(otelgrpc.Version), metric.WithSchemaURL(semconv.SchemaURL))
	// The instruments' own options (unit, description, and the bucket
	// boundaries otelgrpc passes too) come from the semantic conventions.
	m := &rpcMetrics{client: client}
	var err error
	if client {
		var d rpcconv.ClientCallDuration
		d, err = rpcconv.NewClientCallDuration(meter)
		m.dur = d.Inst()
	} else {
		var d rpcconv.ServerCallDuration
		d, err = rpcconv.NewServerCallDuration(meter)
		m.dur = d.Inst()
	}
	if err != nil {
		otel.Handle(err) // as otelgrpc does; the instrument is still usable
	}
	m.sets.Store(&map[setKey][]metric.RecordOption{})
	return m
}

// TagConn implements stats.Handler.
func (*rpcMetrics) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn implements stats.Handler.
func (*rpcMetrics) HandleConn(context.Context, stats.ConnStats) {}

// TagRPC implements stats.Handler.
func (m *rpcMetrics) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcCallKey{}, &rpcCall{method: info.FullMethodName})
}

// HandleRPC implements stats.Handler.
func (m *rpcMetrics) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	switch rs := rs.(type) {
	case *stats.OutHeader:
		if rs.Client && rs.RemoteAddr != nil {
			if c, ok := ctx.Value(rpcCallKey{}).(*rpcCall); ok {
				c.addr = keyAddr(rs.RemoteAddr)
			}
		}
	case *stats.End:
		if !m.dur.Enabled(ctx) {
			return
		}
		var k setKey
		if c, ok := ctx.Value(rpcCallKey{}).(*rpcCall); ok {
			k.method, k.addr = c.method, c.addr
		}
		// status.Code: a status error's code, Unknown for any other error,
		// as otelgrpc's status.FromError gives.
		k.code = status.Code(rs.Error)
		elapsed := float64(rs.EndTime.Sub(rs.BeginTime)) / float64(time.Second)
		m.dur.Record(ctx, elapsed, m.options(k)...)
	}
}

// keyAddr returns a as a map key: itself when it is a pointer (grpc-go's
// *net.TCPAddr, one per connection: no text to build per call), else its
// text, since an address of another type may not be hashable (a struct
// with a slice would make the map lookup panic).
func keyAddr(a net.Addr) net.Addr {
	if reflect.TypeOf(a).Kind() == reflect.Pointer {
		return a
	}
	return addrText(a.String())
}

// addrText is an address reduced to its text.
type addrText string

func (a addrText) Network() string { return "" }
func (a addrText) String() string  { return string(a) }

// options returns the recording options of calls like k, building them on
// first use.
func (m *rpcMetrics) options(k setKey) []metric.RecordOption {
	if o, ok := (*m.sets.Load())[k]; ok {
		return o
	}
	o := []metric.RecordOption{metric.WithAttributeSet(m.attributes(k))}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.sets.Load()
	next := make(map[setKey][]metric.RecordOption, len(old)+1)
	if len(old) < maxSets {
		for kk, v := range old {
			next[kk] = v
		}
	}
	next[k] = o
	m.sets.Store(&next)
	return o
}

// attributes builds the attribute set of calls like k, as otelgrpc does.
func (m *rpcMetrics) attributes(k setKey) attribute.Set {
	kv := make([]attribute.KeyValue, 0, 6)
	if name, ok := strings.CutPrefix(k.method, "/"); ok {
		kv = append(kv, semconv.RPCMethod(name))
	}
	kv = append(kv, semconv.RPCSystemNameGRPC)
	if k.addr != nil {
		var a [2]attribute.KeyValue
		kv = append(kv, a[:serverAddr(a[:], k.addr.String())]...)
	}
	name := statusName(k.code)
	kv = append(kv, semconv.RPCResponseStatusCode(name))
	if isError(k.code, !m.client) {
		kv = append(kv, semconv.ErrorTypeKey.String(name))
	}
	return attribute.NewSet(kv...)
}
