package main

import (
	"context"
	"log"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// countingWriter counts the bytes written to it and keeps none. Loggers
// must format every line to write it, as they would to a file (io.Discard
// would let some skip the work).
type countingWriter struct{ n atomic.Int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// logSink receives every log line of every configuration. Only one
// configuration runs at a time, so a round's share is the difference of
// its count before and after the round.
var logSink = &countingWriter{}

// redirectStdLog points the standard library's logger (where slog.Default
// writes, in grpckit's default configuration) at logSink. slog.Default
// itself is left as it is: its handler still formats every line.
func redirectStdLog() { log.SetOutput(logSink) }

// discardExporter drops the spans it is given: the cost of tracing up to
// the exporter, without a collector.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// newTracerProvider returns a tracer provider that samples with sampler
// (the SDK's default, parent-based always-on, when nil) and hands its spans
// to a batch span processor in front of a discardExporter, as production
// setups batch their exports.
func newTracerProvider(sampler sdktrace.Sampler, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	opts = append(opts, sdktrace.WithBatcher(discardExporter{}))
	if sampler != nil {
		opts = append(opts, sdktrace.WithSampler(sampler))
	}
	return sdktrace.NewTracerProvider(opts...)
}
