package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// payload is the message of every call: 32 bytes, to keep serialization
// out of the picture.
const payload = "0123456789abcdef0123456789abcdef"

// config is one configuration under test: start builds its server and
// client on 127.0.0.1 and returns them as a target.
type config struct {
	name  string
	start func() (*target, error)
}

// target is a running configuration: a client of the echo service and
// what stops it.
type target struct {
	name  string
	ec    echov1.EchoServiceClient
	close func()
	// flush, when set, empties the queue of the target's batch span
	// processor; each round calls it before it starts measuring, so that
	// a round of n calls always makes the same number of exports.
	flush func()
}

// owned is what a target owns besides its server and client: the tracer
// provider its spans go to (nil: none), flushed before each round and shut
// down with the target, and other things to close. A target that fails to
// start releases them too.
type owned struct {
	tp     *sdktrace.TracerProvider
	closer []func()
}

func (o owned) release() {
	for _, f := range o.closer {
		f()
	}
	if o.tp != nil {
		_ = o.tp.Shutdown(context.Background())
	}
}

// newTarget is the target of client ec, closed by stop, owning o.
func newTarget(name string, ec echov1.EchoServiceClient, stop func(), o owned) *target {
	t := &target{name: name, ec: ec, close: func() { stop(); o.release() }}
	if o.tp != nil {
		t.flush = func() { _ = o.tp.ForceFlush(context.Background()) }
	}
	return t
}

func listen() (net.Listener, string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return lis, lis.Addr().String(), nil
}

// Names of the configurations, in the order of the tables.
const (
	nameBare       = "bare grpc-go"
	nameOff        = "grpckit off"
	nameDefault    = "grpckit default"
	nameProduction = "grpckit production (trace 1%)"
	nameEverything = "grpckit everything (trace 100%)"
	nameKratos     = "kratos v2.8.3"
	nameGoZero     = "go-zero v1.10.3 (trace 100%)"
	// nameProductionUntraced is production with trace sampling at 0, for
	// the allocation test.
	nameProductionUntraced = "grpckit production (untraced)"
	nameGGM                = "go-grpc-middleware v2 + otelgrpc (trace 1%)"
	// The floors: what grpc-go itself costs for what grpckit's default
	// does, a 30 s deadline on every call and a JSON access-log line on
	// each side.
	nameBareDeadline = "floor: bare + 30s deadline"
	nameBareLogged   = "floor: bare + deadline + log line each side"
	// nameBareTraced adds a span on each side for every call (W3C trace
	// context propagated), on an SDK tracer provider with a batch span
	// processor: the floor under tracing everything.
	nameBareTraced = "floor: bare + deadline + log line + span each side (100%)"
)

// floorConfigs are bare grpc-go doing by hand what grpckit's defaults do:
// the default deadline, then also one slog JSON line per call on each side,
// then also a span on each side.
func floorConfigs() []config {
	return []config{
		floorConfig(nameBareDeadline, false, false),
		floorConfig(nameBareLogged, true, false),
		floorConfig(nameBareTraced, true, true),
	}
}

// floorConfig is bare grpc-go whose client gives every call a 30 s
// deadline and, with logged, writes a log line per call on each side and,
// with traced, records a span per call on each side (the trace context
// passed in W3C metadata).
func floorConfig(name string, logged, traced bool) config {
	return config{name: name, start: func() (*target, error) {
		logger := slog.New(slog.NewJSONHandler(logSink, nil))
		line := func(ctx context.Context, method string, start time.Time, err error) {
			if logged {
				logger.LogAttrs(ctx, slog.LevelInfo, "finished call", slog.String("grpc.method", method),
					slog.String("grpc.code", status.Code(err).String()), slog.Duration("grpc.time", time.Since(start)))
			}
		}
		var tp *sdktrace.TracerProvider
		var tracer trace.Tracer // used only when traced
		if traced {
			tp = newTracerProvider(nil)
			tracer = tp.Tracer("floor")
		}
		prop := propagation.TraceContext{}
		srv := grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			start := time.Now()
			if traced {
				md, _ := metadata.FromIncomingContext(ctx)
				var span trace.Span
				ctx, span = tracer.Start(prop.Extract(ctx, mdCarrier(md)), info.FullMethod[1:], trace.WithSpanKind(trace.SpanKindServer))
				defer span.End()
			}
			resp, err := handler(ctx, req)
			line(ctx, info.FullMethod, start, err)
			return resp, err
		})
		cli := grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			start := time.Now()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if traced {
				var span trace.Span
				ctx, span = tracer.Start(ctx, method[1:], trace.WithSpanKind(trace.SpanKindClient))
				defer span.End()
				md := metadata.MD{}
				prop.Inject(ctx, mdCarrier(md))
				ctx = metadata.NewOutgoingContext(ctx, md)
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			line(ctx, method, start, err)
			return err
		})
		sopts := []grpc.ServerOption{srv}
		if !logged && !traced {
			sopts = nil // the deadline is the client's alone
		}
		return startGRPC(name, sopts, []grpc.DialOption{cli}, owned{tp: tp})
	}}
}

// bareConfig is grpc.NewServer and grpc.NewClient with nothing but
// plaintext credentials.
func bareConfig() config {
	return config{name: nameBare, start: func() (*target, error) {
		return startGRPC(nameBare, nil, nil, owned{})
	}}
}

// startGRPC serves the echo service on grpc.NewServer(sopts...) and dials
// it with grpc.NewClient(dopts...) in plaintext; the target owns o.
func startGRPC(name string, sopts []grpc.ServerOption, dopts []grpc.DialOption, o owned) (*target, error) {
	lis, addr, err := listen()
	if err != nil {
		o.release()
		return nil, err
	}
	s := grpc.NewServer(sopts...)
	echov1.RegisterEchoServiceServer(s, &grpckittest.Backend{})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	cc, err := grpc.NewClient("passthrough:///"+addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dopts...)...)
	if err != nil {
		s.Stop()
		<-done
		o.release()
		return nil, err
	}
	return newTarget(name, echov1.NewEchoServiceClient(cc), func() {
		_ = cc.Close()
		s.Stop()
		<-done
	}, o), nil
}

// startGrpckit serves the echo service on server.New(sopts...) and dials
// it with client.New(target, copts...); the target owns o.
func startGrpckit(name string, sopts []server.Option, copts []client.Option, o owned) (*target, error) {
	lis, addr, err := listen()
	if err != nil {
		o.release()
		return nil, err
	}
	s, err := server.New(sopts...)
	if err != nil {
		_ = lis.Close()
		o.release()
		return nil, fmt.Errorf("%s: server.New: %w", name, err)
	}
	echov1.RegisterEchoServiceServer(s, &grpckittest.Backend{})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	cc, err := client.New("passthrough:///"+addr, copts...)
	if err != nil {
		_ = s.Close()
		<-done
		o.release()
		return nil, fmt.Errorf("%s: client.New: %w", name, err)
	}
	return newTarget(name, echov1.NewEchoServiceClient(cc), func() {
		_ = cc.Close()
		_ = s.Close()
		<-done
	}, o), nil
}

// grpckitConfigs are bare grpc-go, its floors and the grpckit
// configurations.
func grpckitConfigs() []config {
	return append(append([]config{bareConfig()}, floorConfigs()...),
		config{name: nameOff, start: func() (*target, error) {
			// Everything off that can be: no access log, no metrics, no
			// tracing (none is configured and no global provider is set
			// when it starts), no reflection; on the client no default
			// deadline, no breaker, and grpc-go's pick_first instead of
			// p2c. Recovery stays: the server always installs it (it wraps
			// the handlers, at no allocation per call).
			return startGrpckit(nameOff,
				[]server.Option{grpckit.WithInsecure(), grpckit.WithAccessLog(false), grpckit.WithMetrics(nil), server.WithReflection(false)},
				[]client.Option{grpckit.WithInsecure(), grpckit.WithAccessLog(false), grpckit.WithMetrics(nil),
					client.WithDefaultTimeout(0), client.WithoutBreaker(), client.WithBalancer("pick_first")}, owned{})
		}},
		config{name: nameDefault, start: func() (*target, error) {
			// Exactly the builders' defaults, plaintext: the access log
			// goes to slog.Default() (whose output redirectStdLog counts),
			// metrics to a registry of each builder's own, the client has
			// p2c, a breaker per method and a 30 s default deadline.
			return startGrpckit(nameDefault,
				[]server.Option{grpckit.WithInsecure()},
				[]client.Option{grpckit.WithInsecure()}, owned{})
		}},
		productionConfig(nameProduction, 0.01),
		config{name: nameEverything, start: func() (*target, error) {
			// Production with every call traced, plus OpenTelemetry RPC
			// metrics (otelgrpc's, recorded by grpckit's lean stats
			// handler, on an SDK meter provider), a
			// concurrency limit and load shedding that admit everything,
			// request validation on both sides, retries of Echo with
			// their budget, and a client rate limit that admits
			// everything.
			logger := slog.New(slog.NewJSONHandler(logSink, nil))
			tp := newTracerProvider(nil)
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			return startGrpckit(nameEverything,
				[]server.Option{grpckit.WithInsecure(), grpckit.WithLogger(logger), grpckit.WithMetrics(prometheus.NewRegistry()),
					grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(1), grpckit.WithMeterProvider(mp),
					server.WithRateLimit(rate.Inf, 1), server.WithConcurrencyLimit(1 << 20), server.WithLoadShedding(), server.WithValidation()},
				[]client.Option{grpckit.WithInsecure(), grpckit.WithLogger(logger), grpckit.WithMetrics(prometheus.NewRegistry()),
					grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(1), grpckit.WithMeterProvider(mp),
					client.WithIdempotent(echov1.EchoService_Echo_FullMethodName), client.WithRateLimit(rate.Inf, 1), client.WithValidation()},
				owned{tp: tp, closer: []func(){func() { _ = mp.Shutdown(context.Background()) }}})
		}})
}

// allConfigs are the eleven configurations of the per-call tables. go-zero
// comes last: it sets otel's global tracer provider, which grpckit's
// builders would follow if it were set when they run.
func allConfigs() []config {
	return append(grpckitConfigs(), kratosConfig(), ggmConfig(), goZeroConfig())
}

// productionConfig is internal/benchkit's "production + default
// deadline": one access-log line per call on each side (JSON), Prometheus
// on both sides, the given ratio of root calls traced (the client decides,
// the server continues the client's traces), a server rate limit that
// admits everything, and the client's defaults: a breaker per method, p2c
// and a 30 s deadline.
func productionConfig(name string, sampling float64) config {
	return config{name: name, start: func() (*target, error) {
		logger := slog.New(slog.NewJSONHandler(logSink, nil))
		tp := newTracerProvider(nil)
		return startGrpckit(name,
			[]server.Option{grpckit.WithInsecure(), grpckit.WithLogger(logger), grpckit.WithMetrics(prometheus.NewRegistry()),
				server.WithRateLimit(rate.Inf, 1), grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(0)},
			[]client.Option{grpckit.WithInsecure(), grpckit.WithLogger(logger), grpckit.WithMetrics(prometheus.NewRegistry()),
				grpckit.WithTracerProvider(tp), grpckit.WithTraceSampling(sampling)},
			owned{tp: tp})
	}}
}

// mdCarrier carries trace context in gRPC metadata.
type mdCarrier metadata.MD

func (c mdCarrier) Get(k string) string {
	if v := metadata.MD(c).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c mdCarrier) Set(k, v string) { metadata.MD(c).Set(k, v) }
func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
