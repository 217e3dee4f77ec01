// Package logging writes one log/slog line per finished gRPC call, on the
// server and the client, for unary calls and streams alike.
//
// Each line has stable keys, the ones go-grpc-middleware's logging uses so
// existing queries keep working: protocol, grpc.component (server or
// client), grpc.service, grpc.method, grpc.method_type, grpc.code,
// grpc.time_ms (milliseconds, as a string like go-grpc-middleware's),
// peer.address (server side), grpc.error (the status message, on failed
// calls), and trace_id and span_id when the call's context carries a valid
// OpenTelemetry span. Fields a handler
// adds with go-grpc-middleware's logging.InjectFields or logging.AddFields
// are appended. The level follows the status code (see [DefaultLevel]) and
// can be overridden with [WithLevels].
//
// Payloads are never logged unless [WithPayloads] asks for them. Health
// checks and reflection are not logged unless [WithLogHealth] asks for them;
// the selection uses go-grpc-middleware's selector.
//
// Why not go-grpc-middleware's logging interceptor itself: measured here it
// costs 1.26–1.38× a bare call even when the level filters every line out
// (+90 to +118 allocations), because it builds its fields before asking the
// logger whether the line is enabled. These interceptors ask
// slog.Logger.Enabled first, at the level the call's code maps to, and
// build nothing for a filtered line; see the benchmarks in this package for
// the figures.
//
// A written line goes straight to the logger's handler: the fields every
// line of a method shares are formatted once per method (slog's handlers
// pre-format attributes given to WithAttrs), the record carries no caller
// program counter (runtime.Callers was a tenth of a line's cost, and the
// source would be this package anyway, so a handler with AddSource shows an
// empty source), and the text of peer addresses is kept in a small
// process-wide cache (256 entries, by address identity). A handler's
// ReplaceAttr sees the per-method fields once per method, not once per line. Measured with `go test -run '^$' -bench . -benchmem
// ./interceptors/logging`: a server line in JSON 0.78–0.86 µs and 1
// allocation (it was 1.6 µs and 5 before), a filtered call 95 ns and none,
// time.Now 47 ns in the same run.
package logging
