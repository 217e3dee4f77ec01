// Command observability shows what grpckit records for every call: one log
// line per call on each side (logfmt text or JSON), Prometheus metrics on
// the server's admin endpoint, and OpenTelemetry spans, here printed by
// otel's stdout exporter.
//
//	go -C examples run ./observability             # logfmt-style text logs
//	go -C examples run ./observability -json       # JSON logs
//
// With OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// set, spans go to that OpenTelemetry collector over OTLP/gRPC instead
// (otlptracegrpc reads the standard OTEL_EXPORTER_OTLP_* variables:
// endpoint, headers, TLS, OTEL_EXPORTER_OTLP_INSECURE=true for plaintext):
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 go -C examples run ./observability
//
// Zipkin and Jaeger, heirs of Dapper, take OTLP too: Jaeger natively,
// Zipkin through the collector's zipkin exporter. Pass the provider to
// grpckit.WithTracerProvider on both builders (or call
// otel.SetTracerProvider(tp): the builders use the global provider once one
// is set). In production, sample: grpckit.WithTraceSampling(0.01) on a
// service that takes outside traffic traces 1% of the calls that arrive
// untraced and makes the others nearly free (no span, no trace header);
// services behind it use WithTraceSampling(0) and only continue traces.
// Or give the provider sdktrace.WithSampler(tracing.Sampler(0.01)) to keep
// every call's trace id on the wire and in the logs, at 13-20% of a bare
// call more.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	"github.com/grpckit/grpckit/interceptors/tracing"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/server"
)

func main() {
	jsonLogs := flag.Bool("json", false, "log JSON instead of logfmt-style text")
	flag.Parse()
	if err := run(os.Stdout, *jsonLogs); err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, jsonLogs bool) error {
	// Logs: text or JSON, to any writer, with a level threshold.
	var h slog.Handler = slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})
	if jsonLogs {
		h = slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	logger := slog.New(h)

	// Traces: every call traced here; sample in production (see above).
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(tracing.Sampler(1))}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracegrpc.New(context.Background())
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		fmt.Fprintln(out, "--- spans go to the OTLP collector")
	} else {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	defer func() { _ = tp.Shutdown(context.Background()) }() // flushes the batch to the collector

	srv, err := server.New(
		grpckit.WithInsecure(), // loopback
		grpckit.WithLogger(logger),
		grpckit.WithTracerProvider(tp),
		server.WithAdmin("127.0.0.1:0"), // loopback only: /metrics, /healthz, /debug/grpckit/...
		server.WithPprof(true),          // and /debug/pprof/
	)
	if err != nil {
		return err
	}
	addsvcv1.RegisterAddServiceServer(srv, addservice.New(0))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		_ = srv.Close()
		<-served
	}()

	conn, err := client.New("passthrough:///"+lis.Addr().String(), grpckit.WithInsecure(),
		grpckit.WithLogger(logger), grpckit.WithTracerProvider(tp))
	if err != nil {
		return err
	}
	defer conn.Close()
	add := addsvcv1.NewAddServiceClient(conn)
	ctx := context.Background()
	if _, err := add.Sum(ctx, &addsvcv1.SumRequest{A: 1, B: 2}); err != nil {
		return err
	}
	// An error call logs at WARN.
	if _, err := add.Sum(ctx, &addsvcv1.SumRequest{A: 1 << 62, B: 1 << 62}); err == nil {
		return errors.New("overflow not reported")
	}

	// The server records a call after sending its response: wait for it.
	time.Sleep(50 * time.Millisecond)
	resp, err := http.Get("http://" + srv.AdminAddr().String() + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintln(out, "--- from the admin endpoint's /metrics:")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "grpc_server_handled_total{") && strings.Contains(l, `grpc_method="Sum"`) {
			fmt.Fprintln(out, l)
		}
	}
	return sc.Err()
}
