package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/logbuf"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// jsonLines parses every line of a JSON log.
func TestAccessLog(t *testing.T) {
	slogs, clogs := &logbuf.Buffer{}, &logbuf.Buffer{}
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register, grpckit.WithLogger(slog.New(slog.NewJSONHandler(slogs, nil))))
	conn := in.Dial(t, grpckit.WithLogger(slog.New(slog.NewJSONHandler(clogs, nil))))
	ec := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 10*time.Second)

	for _, tc := range []struct {
		fail  codes.Code
		code  string
		level string
	}{
		{codes.OK, "OK", "INFO"},
		{codes.InvalidArgument, "InvalidArgument", "WARN"},
		{codes.Unavailable, "Unavailable", "ERROR"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			b.Faults.Next(1, grpckittest.Fault{Code: tc.fail})
			_, _ = ec.Echo(ctx, &echov1.EchoRequest{Message: "hello"})
			// The server logs after it has sent the response: poll.
			wait.For(t, 5*time.Second, "the server log line", func() bool { return strings.Count(slogs.String(), "\n") == 1 })
			for _, side := range []struct {
				name string
				buf  *logbuf.Buffer
			}{{"server", slogs}, {"client", clogs}} {
				lines := side.buf.JSONLines(t)
				side.buf.Reset()
				if len(lines) != 1 {
					t.Fatalf("%s logged %d lines, want exactly 1", side.name, len(lines))
				}
				l := lines[0]
				want := map[string]any{
					"level": tc.level, "msg": "finished call", "grpc.component": side.name,
					"grpc.service": "grpckit.echo.v1.EchoService", "grpc.method": "Echo",
					"grpc.method_type": "unary", "grpc.code": tc.code,
				}
				for k, v := range want {
					if l[k] != v {
						t.Errorf("%s line: %s = %v, want %v", side.name, k, l[k], v)
					}
				}
				if ms, _ := l["grpc.time_ms"].(string); !regexp.MustCompile(`^\d+\.\d{3}$`).MatchString(ms) {
					t.Errorf("%s line: grpc.time_ms = %q, want milliseconds like 0.123", side.name, ms)
				}
				if side.name == "server" {
					if pa, _ := l["peer.address"].(string); !strings.HasPrefix(pa, "127.0.0.1:") {
						t.Errorf("server line: peer.address = %q, want 127.0.0.1:port", pa)
					}
				}
				if _, ok := l["grpc.request"]; ok {
					t.Errorf("%s line logs the payload without being asked", side.name)
				}
			}
		})
	}

	// Health checks are not logged by default.
	if _, err := healthStatus(ctx, conn, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // give a wrongly logged line the time to appear
	if out := slogs.String() + clogs.String(); out != "" {
		t.Fatalf("health check was logged: %s", out)
	}
}

func TestAccessLogOffAndFiltered(t *testing.T) {
	buf := &logbuf.Buffer{}
	warnOnly := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register, grpckit.WithLogger(warnOnly))
	ec := echov1.NewEchoServiceClient(in.Dial(t, grpckit.WithAccessLog(false)))
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "quiet"}); err != nil {
		t.Fatal(err)
	}
	b.Faults.Next(1, grpckittest.Fault{Code: codes.NotFound})
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "not found"}); status.Code(err) != codes.NotFound {
		t.Fatalf("got %v, want NotFound", err)
	}
	wait.For(t, 5*time.Second, "the warning line", func() bool { return strings.Contains(buf.String(), "grpc.code=NotFound") })
	if out := buf.String(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "level=WARN") {
		t.Fatalf("logfmt output = %q, want exactly the one WARN line (OK filtered out)", out)
	}
}

// scrape fetches the admin endpoint's /metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sample returns the value of the series whose line starts with prefix.
func sample(t *testing.T, text, prefix string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return "missing"
	}
	return m[1]
}

func TestMetricsOnAdminEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := &grpckittest.Backend{}
	in := grpckittest.NewServer(t, b.Register, grpckit.WithMetrics(reg), server.WithAdmin("127.0.0.1:0"), grpckit.WithAccessLog(false))
	ec := echov1.NewEchoServiceClient(in.Dial(t, grpckit.WithMetrics(reg), grpckit.WithAccessLog(false)))
	ctx := grpckittest.Context(t, 10*time.Second)

	const ok, notFound = 5, 3
	for range ok {
		if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	b.Faults.Next(notFound, grpckittest.Fault{Code: codes.NotFound})
	for range notFound {
		_, _ = ec.Echo(ctx, &echov1.EchoRequest{Message: "not found"})
	}
	ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "s", Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = ss.Recv()
	}
	bs, err := ec.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := bs.Send(&echov1.BidiStreamRequest{Message: "b"}); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_ = bs.CloseSend()
	for err == nil {
		_, err = bs.Recv()
	}
	addr := in.Server.AdminAddr().String()
	labels := `grpc_method="Echo",grpc_service="grpckit.echo.v1.EchoService",grpc_type="unary"`
	// The server records a call after its handler returns: poll.
	wait.For(t, 5*time.Second, "server counts", func() bool {
		return sample(t, scrape(t, addr), `grpc_server_handled_total{grpc_code="NotFound",`+labels+`}`) == fmt.Sprint(notFound)
	})
	text := scrape(t, addr)
	for prefix, want := range map[string]string{
		`grpc_server_handled_total{grpc_code="OK",` + labels + `}`:       fmt.Sprint(ok),
		`grpc_server_handled_total{grpc_code="NotFound",` + labels + `}`: fmt.Sprint(notFound),
		`grpc_server_started_total{` + labels + `}`:                      fmt.Sprint(ok + notFound),
		`grpc_server_handling_seconds_count{` + labels + `}`:             fmt.Sprint(ok + notFound),
		`grpc_client_handled_total{grpc_code="OK",` + labels + `}`:       fmt.Sprint(ok),
		`grpc_client_handled_total{grpc_code="NotFound",` + labels + `}`: fmt.Sprint(notFound),
		`grpc_client_handling_seconds_count{` + labels + `}`:             fmt.Sprint(ok + notFound),
		// Streams count their messages, on both sides.
		`grpc_server_msg_sent_total{grpc_method="ServerStream",grpc_service="grpckit.echo.v1.EchoService",grpc_type="server_stream"}`:     "4",
		`grpc_client_msg_received_total{grpc_method="ServerStream",grpc_service="grpckit.echo.v1.EchoService",grpc_type="server_stream"}`: "4",
		`grpc_server_msg_received_total{grpc_method="BidiStream",grpc_service="grpckit.echo.v1.EchoService",grpc_type="bidi_stream"}`:     "3",
		`grpc_server_msg_sent_total{grpc_method="BidiStream",grpc_service="grpckit.echo.v1.EchoService",grpc_type="bidi_stream"}`:         "3",
		`grpc_client_msg_sent_total{grpc_method="BidiStream",grpc_service="grpckit.echo.v1.EchoService",grpc_type="bidi_stream"}`:         "3",
		// Initialized at zero before any call.
		`grpc_server_started_total{grpc_method="ClientStream",grpc_service="grpckit.echo.v1.EchoService",grpc_type="client_stream"}`: "0",
	} {
		if got := sample(t, text, prefix); got != want {
			t.Errorf("%s = %s, want %s", prefix, got, want)
		}
	}

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", resp.StatusCode)
	}
	resp, err = http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without WithPprof: got %d, want 404", resp.StatusCode)
	}
}

func TestMetricsDefaultRegistryIsOwn(t *testing.T) {
	in := grpckittest.NewServer(t, nil)
	if in.Server.Registry() == nil || in.Server.Registry() == prometheus.DefaultRegisterer {
		t.Fatal("server metrics: want a registry of its own by default")
	}
	off := grpckittest.NewServer(t, nil, grpckit.WithMetrics(nil))
	if off.Server.Registry() != nil {
		t.Fatal("WithMetrics(nil): want metrics off")
	}
}

func TestTracePropagation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))

	leaf := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithTracerProvider(tp), grpckit.WithLogger(logger))
	next := echov1.NewEchoServiceClient(leaf.Dial(t, grpckit.WithTracerProvider(tp), grpckit.WithAccessLog(false)))

	// The middle hop calls the leaf with the context it was called with.
	relay := &grpckittest.Backend{Handler: func(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		return next.Echo(ctx, &echov1.EchoRequest{Message: "leaf"})
	}}
	mid := grpckittest.NewServer(t, relay.Register, grpckit.WithTracerProvider(tp), grpckit.WithLogger(logger))
	ec := echov1.NewEchoServiceClient(mid.Dial(t, grpckit.WithTracerProvider(tp), grpckit.WithAccessLog(false)))

	ctx, root := tp.Tracer("test").Start(grpckittest.Context(t, 10*time.Second), "root")
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "relay"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	traceID := root.SpanContext().TraceID()

	wait.For(t, 5*time.Second, "5 ended spans", func() bool { return len(rec.Ended()) >= 5 })
	kinds := map[string]int{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("span %s has trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		kinds[s.SpanKind().String()]++
	}
	if kinds["client"] != 2 || kinds["server"] != 2 {
		t.Errorf("span kinds = %v, want 2 client and 2 server spans", kinds)
	}
	wait.For(t, 5*time.Second, "two server log lines", func() bool { return strings.Count(logs.String(), "\n") == 2 })
	for _, l := range logs.JSONLines(t) {
		if l["trace_id"] != traceID.String() || l["span_id"] == nil {
			t.Errorf("server log line trace_id = %v, span_id = %v; want %s and a span id", l["trace_id"], l["span_id"], traceID)
		}
	}
}

func TestExemplarsCarryTraceID(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithTracerProvider(tp), server.WithAdmin("127.0.0.1:0"), grpckit.WithAccessLog(false))
	ec := echov1.NewEchoServiceClient(in.Dial(t, grpckit.WithTracerProvider(tp), grpckit.WithAccessLog(false)))
	ctx, root := tp.Tracer("test").Start(grpckittest.Context(t, 10*time.Second), "root")
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	want := `trace_id="` + root.SpanContext().TraceID().String() + `"`
	wait.For(t, 5*time.Second, "an exemplar with the trace id", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+in.Server.AdminAddr().String()+"/metrics", nil)
		req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), want)
	})
}
