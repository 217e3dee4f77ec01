package grpckit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/internal/logbuf"
	"github.com/grpckit/grpckit/internal/testcert"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every shared option refuses the same invalid input with the same error
// on both sides.
func TestSameErrorsOnBothSides(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  grpckit.Option
		want string
	}{
		{"nil logger", grpckit.WithLogger(nil), "grpckit: WithLogger: nil logger"},
		{"nil TLS", grpckit.WithTLS(nil), "grpckit: WithTLS: nil *tls.Config"},
		{"nil credentials", grpckit.WithTransportCredentials(nil), "grpckit: WithTransportCredentials: nil credentials"},
		{"sampling ratio", grpckit.WithTraceSampling(2), "grpckit: WithTraceSampling: ratio 2 is not between 0 and 1"},
		{"recv size", grpckit.WithMaxRecvMsgSize(0), "grpckit: WithMaxRecvMsgSize: 0 is not a positive size"},
		{"send size", grpckit.WithMaxSendMsgSize(-1), "grpckit: WithMaxSendMsgSize: -1 is not a positive size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, serr := server.New(tc.opt)
			_, cerr := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure(), tc.opt)
			for side, err := range map[string]error{"server": serr, "client": cerr} {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("%s: got %v, want an error starting %q", side, err, tc.want)
				}
			}
		})
	}
}

// One set of shared options configures a server and a client the same
// way: one logger, one registry, TLS, message size limits.
func TestSharedOptionsOnBothSides(t *testing.T) {
	var logs logbuf.Buffer
	reg := prometheus.NewRegistry()
	pair, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	common := []grpckit.Option{
		grpckit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		grpckit.WithMetrics(reg),
		grpckit.WithMaxRecvMsgSize(1 << 10),
	}
	sopts := []server.Option{grpckit.WithTLS(pair.Server)}
	for _, o := range common {
		sopts = append(sopts, o)
	}
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, sopts...)
	srv := in.Server
	copts := []client.Option{grpckit.WithTLS(pair.Client)}
	for _, o := range common {
		copts = append(copts, o)
	}
	conn := in.Dial(t, copts...)
	if srv.Registry() != reg || conn.Registry() != reg {
		t.Fatalf("registries: got server %p, client %p, want both %p", srv.Registry(), conn.Registry(), reg)
	}
	c := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "over TLS"}); err != nil {
		t.Fatalf("call over TLS: %v", err)
	}
	// The size limit holds on both sides: the server refuses a large
	// request, the client a large response.
	big := strings.Repeat("x", 2<<10)
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: big}); err == nil {
		t.Error("2 KiB request with a 1 KiB limit: got success, want ResourceExhausted")
	}
	for _, name := range []string{"grpc_server_handled_total", "grpc_client_handled_total"} {
		if !gathered(t, reg, name) {
			t.Errorf("%s: not on the shared registry", name)
		}
	}
	for _, side := range []string{"grpc.component=server", "grpc.component=client"} {
		if !strings.Contains(logs.String(), side) {
			t.Errorf("shared logger: no line with %s", side)
		}
	}
	// nil turns metrics off on both sides.
	off, err := server.New(grpckit.WithInsecure(), grpckit.WithMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	offConn, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure(), grpckit.WithMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer offConn.Close()
	defer off.Close()
	if off.Registry() != nil || offConn.Registry() != nil {
		t.Errorf("WithMetrics(nil): got registries %v, %v, want nil on both", off.Registry(), offConn.Registry())
	}
}

func gathered(t *testing.T, g prometheus.Gatherer, name string) bool {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}

// jsonLines returns the JSON lines logged to b, by grpc.component.
// jsonLines returns b's log lines by grpc.component (server, client).
func jsonLines(t *testing.T, b *logbuf.Buffer) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, m := range b.JSONLines(t) {
		c, _ := m["grpc.component"].(string)
		out[c] = append(out[c], m)
	}
	return out
}

// WithLoggingOptions reaches the access log of both builders, unary calls
// and streams alike (what each option does is package logging's test).
func TestLoggingOptionsOnBothSides(t *testing.T) {
	var logs logbuf.Buffer
	opts := []grpckit.Option{
		grpckit.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
		grpckit.WithLoggingOptions(logging.WithPayloads(true), logging.WithLogHealth(true),
			logging.WithLevels(func(codes.Code) slog.Level { return slog.LevelWarn })),
	}
	srv := grpckittest.NewServer(t, new(grpckittest.Backend).Register, opts[0], opts[1])
	conn := srv.Dial(t, opts[0], opts[1])
	ctx := grpckittest.Context(t, 10*time.Second)
	ec := echov1.NewEchoServiceClient(conn)
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "payload-x"}); err != nil {
		t.Fatal(err)
	}
	bs, err := ec.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Send(&echov1.BidiStreamRequest{Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Recv(); err != nil {
		t.Fatal(err)
	}
	_ = bs.CloseSend()
	for err == nil {
		_, err = bs.Recv()
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	// The server logs after it has answered: poll.
	wait.For(t, 5*time.Second, "three lines per side", func() bool {
		l := jsonLines(t, &logs)
		return len(l["server"]) == 3 && len(l["client"]) == 3
	})
	for side, lines := range jsonLines(t, &logs) {
		if len(lines) != 3 {
			t.Fatalf("%s logged %d lines, want 3: %v", side, len(lines), lines)
		}
		var methods []string
		for _, l := range lines {
			methods = append(methods, fmt.Sprint(l["grpc.method"]))
			if l["level"] != "WARN" {
				t.Errorf("%s line %v: level %v, want WARN (WithLevels)", side, l["grpc.method"], l["level"])
			}
		}
		slices.Sort(methods)
		if want := []string{"BidiStream", "Check", "Echo"}; !slices.Equal(methods, want) {
			t.Errorf("%s logged %v, want %v (streams, and health with WithLogHealth)", side, methods, want)
		}
		for _, l := range lines {
			if l["grpc.method"] != "Echo" {
				continue
			}
			if req, _ := json.Marshal(l["grpc.request"]); !strings.Contains(string(req), "payload-x") {
				t.Errorf("%s Echo line: grpc.request = %s, want the payload (WithPayloads)", side, req)
			}
		}
	}
}

// WithTraceSampling decides root calls on both builders, for unary calls
// and streams, and baggage crosses either way (what sampling does in
// detail is package tracing's test).
func TestTraceSamplingOnBothSides(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)) // samples everything it is asked to
	defer func() { _ = tp.Shutdown(context.Background()) }()
	var mu sync.Mutex
	var headers, bags []string
	note := server.WithUnaryInterceptor(server.SlotUser, func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		mu.Lock()
		headers = append(headers, strings.Join(md.Get("traceparent"), ","))
		bags = append(bags, baggage.FromContext(ctx).Member("tenant").Value())
		mu.Unlock()
		return h(ctx, req)
	})
	quiet := grpckit.WithAccessLog(false)
	m, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(m)
	ctx := baggage.ContextWithBaggage(grpckittest.Context(t, 10*time.Second), bag)
	stream := func(ec echov1.EchoServiceClient) {
		t.Helper()
		ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "s", Count: 1})
		for err == nil {
			_, err = ss.Recv()
		}
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}

	// Ratio 0 on both sides: nothing recorded, no trace header, baggage
	// still crosses.
	srv := grpckittest.NewServer(t, new(grpckittest.Backend).Register, quiet, note,
		grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0))
	ec := echov1.NewEchoServiceClient(srv.Dial(t, quiet, grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0)))
	for range 5 {
		if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	stream(ec)
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("ratio 0: %d spans recorded, want none", n)
	}
	mu.Lock()
	for i, h := range headers {
		if h != "" || bags[i] != "acme" {
			t.Errorf("ratio 0, call %d: traceparent %q, baggage tenant %q; want none, acme", i, h, bags[i])
		}
	}
	mu.Unlock()

	// Ratio 1 on the client: every root call is traced, the server (ratio
	// 0) follows, unary calls and streams.
	traced := echov1.NewEchoServiceClient(srv.Dial(t, quiet, grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(1)))
	if _, err := traced.Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	stream(traced)
	wait.For(t, 5*time.Second, "4 ended spans", func() bool { return len(rec.Ended()) >= 4 })
	kinds := map[string]int{}
	for _, s := range rec.Ended() {
		kinds[s.SpanKind().String()+" "+s.Name()]++
	}
	for _, k := range []string{"client grpckit.echo.v1.EchoService/Echo", "server grpckit.echo.v1.EchoService/Echo",
		"client grpckit.echo.v1.EchoService/ServerStream", "server grpckit.echo.v1.EchoService/ServerStream"} {
		if kinds[k] != 1 {
			t.Errorf("spans: got %v, want one %s", kinds, k)
		}
	}
}

func TestTraceSamplingRejectsBadRatio(t *testing.T) {
	for _, r := range []float64{-0.1, 1.5, math.NaN()} {
		if _, err := server.New(grpckit.WithTraceSampling(r)); err == nil || !strings.Contains(err.Error(), "WithTraceSampling") {
			t.Errorf("server ratio %v: got %v, want an error naming WithTraceSampling", r, err)
		}
		if _, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithTraceSampling(r)); err == nil || !strings.Contains(err.Error(), "WithTraceSampling") {
			t.Errorf("client ratio %v: got %v, want an error naming WithTraceSampling", r, err)
		}
	}
}

// Servers (and clients) built with the same registry share its series: no
// registration error, and their counts add up.
func TestBuildersShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	quiet := grpckit.WithAccessLog(false)
	ctx := grpckittest.Context(t, 10*time.Second)
	for i := range 2 {
		srv := grpckittest.NewServer(t, new(grpckittest.Backend).Register, quiet, grpckit.WithMetrics(reg))
		ec := echov1.NewEchoServiceClient(srv.Dial(t, quiet, grpckit.WithMetrics(reg)))
		for range 2 + i {
			if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var v float64
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					v += m.GetCounter().GetValue()
				}
			}
		}
		return v
	}
	// A server counts a call handled once it has answered: poll.
	wait.For(t, 5*time.Second, "5 calls handled by the servers", func() bool { return sum("grpc_server_handled_total") == 5 })
	for _, name := range []string{"grpc_server_started_total", "grpc_client_started_total", "grpc_client_handled_total"} {
		if got := sum(name); got != 5 {
			t.Errorf("%s: got %v, want 5 (2 calls to one server, 3 to the other)", name, got)
		}
	}
}

// A builder's own registry shows the Go runtime and the process beside
// the gRPC series; a registry the user passes is left as it is.
func TestDefaultRegistryHasRuntimeMetrics(t *testing.T) {
	srv, err := server.New(grpckit.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := client.New("passthrough:///127.0.0.1:1", grpckit.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for side, reg := range map[string]grpckit.Registry{"server": srv.Registry(), "client": conn.Registry()} {
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
			if !gathered(t, reg, name) {
				t.Errorf("%s's default registry: no %s", side, name)
			}
		}
	}
	own := prometheus.NewRegistry()
	mine, err := server.New(grpckit.WithInsecure(), grpckit.WithMetrics(own))
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	if gathered(t, own, "go_goroutines") {
		t.Error("a registry given with WithMetrics: got go_goroutines registered on it, want it left to its owner")
	}
}
