// Package tracing traces gRPC calls with OpenTelemetry and propagates W3C
// trace context and baggage across every hop.
//
// The four interceptors start one span per call as the stats handlers of
// otelgrpc v0.72.0 do by default (semantic conventions v1.43.0; a test
// compares the two):
//
//   - name "pkg.Service/Method", kind server or client;
//   - attributes rpc.system.name ("grpc"), rpc.method
//     ("pkg.Service/Method"), rpc.response.status_code (the canonical code
//     name: "OK", "CANCELLED", ...), server.address and server.port (the
//     server's side of the connection: the address the server accepted the
//     call on, the one the client reached);
//   - status Error with the status message for every code but OK on the
//     client; on the server only for Unknown, DeadlineExceeded,
//     Unimplemented, Internal, Unavailable and DataLoss.
//
// Unlike otelgrpc's, they ask the span whether it records before building
// any attribute (so a sampler sees none at the start), the client's span
// covers the call rather than each attempt, and otelgrpc's
// OTEL_SEMCONV_STABILITY_OPT_IN (rpc/old, rpc/dup) does not change them (it
// does change the metrics of [ServerHandler] and [ClientHandler]).
//
// They are not otelgrpc's deprecated interceptors; they exist because of
// what was measured here against bare grpc-go, unary calls over loopback
// TCP:
//
//   - otelgrpc's stats handler with nothing sampled: about 1.4× the CPU and
//     +80 allocations per call, because it builds attributes and records
//     metrics before anything knows whether the call is sampled;
//   - any stats handler at all, even one whose methods are empty: about
//     1.2× and +32 allocations, which grpc-go spends creating the stats
//     events it hands to the handler;
//   - these interceptors with nothing sampled: the span context and the
//     propagation header only (see the benchmarks in internal/benchkit).
//     With the default propagators the traceparent, tracestate and baggage
//     headers are written to and read from the gRPC metadata directly, in
//     the bytes otel's propagators produce (a test and a fuzz test compare
//     them). What remains is mostly grpc-go's: a traceparent header changes
//     on every call, so HPACK indexes and evicts it on both sides, and the
//     header alone measured +6 allocations and about 5% of a bare call.
//
// In the builders the tracing slot is outermost, so on the server every
// rejection is inside the span, and on the client one span covers the call
// as the caller sees it, retries included.
//
// OpenTelemetry RPC metrics (rpc.server.call.duration and
// rpc.client.call.duration) need a stats handler: [ServerHandler] and
// [ClientHandler] record what otelgrpc's stats handler records (its scope,
// instruments, buckets and attributes; a test feeds both the same events,
// and a fuzz test any method name, address and code) for 45 allocations
// fewer per call, client and server together. They are otelgrpc's own
// when OTEL_SEMCONV_STABILITY_OPT_IN asks for its older conventions.
//
// Sampling belongs to the TracerProvider unless [WithSampling] is given:
// [Sampler] builds the usual production choice for a provider (parent-based,
// a ratio of new traces), at the cost of building and propagating the span
// context of every call; WithSampling decides root calls before anything is
// built.
package tracing
