package main

import (
	"context"
	"errors"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/middleware/circuitbreaker"
	"github.com/go-kratos/kratos/v2/middleware/logging"
	"github.com/go-kratos/kratos/v2/middleware/metrics"
	"github.com/go-kratos/kratos/v2/middleware/ratelimit"
	"github.com/go-kratos/kratos/v2/middleware/recovery"
	"github.com/go-kratos/kratos/v2/middleware/tracing"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// kratosConfig is Kratos's transport/grpc server and client with the
// middlewares of its docs and kratos-layout, in their order: recovery,
// tracing, logging, metrics, then BBR rate limiting on the server and the
// SRE circuit breaker on the client. The logger is kratos-layout's (a
// std logger with ts, caller, service and trace fields); tracing samples
// 1% of root traces, parent-based, into a batch processor, as Kratos's
// tracing example configures its provider; metrics are Kratos's default
// OpenTelemetry instruments on an SDK meter provider with its histogram
// view. Everything else keeps Kratos's defaults: a 1 s server and 2 s
// client timeout per call, its wrr selector, no stream middleware.
func kratosConfig() config {
	return config{name: nameKratos, start: startKratos}
}

func startKratos() (*target, error) {
	logger := log.With(log.NewStdLogger(logSink),
		"ts", log.DefaultTimestamp,
		"caller", log.DefaultCaller,
		"service.id", "bench",
		"service.name", "bench",
		"service.version", "v0",
		"trace.id", tracing.TraceID(),
		"span.id", tracing.SpanID(),
	)
	// Kratos's own messages (server start and stop, recovered panics) go
	// to its global logger.
	log.SetLogger(logger)
	tp := newTracerProvider(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)))
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewManualReader()),
		sdkmetric.WithView(
			metrics.DefaultSecondsHistogramView(metrics.DefaultServerSecondsHistogramName),
			metrics.DefaultSecondsHistogramView(metrics.DefaultClientSecondsHistogramName)),
	)
	meter := mp.Meter("bench")
	sreq, err1 := metrics.DefaultRequestsCounter(meter, metrics.DefaultServerRequestsCounterName)
	ssec, err2 := metrics.DefaultSecondsHistogram(meter, metrics.DefaultServerSecondsHistogramName)
	creq, err3 := metrics.DefaultRequestsCounter(meter, metrics.DefaultClientRequestsCounterName)
	csec, err4 := metrics.DefaultSecondsHistogram(meter, metrics.DefaultClientSecondsHistogramName)
	o := owned{tp: tp, closer: []func(){func() { _ = mp.Shutdown(context.Background()) }}}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		o.release()
		return nil, err
	}

	lis, addr, err := listen()
	if err != nil {
		o.release()
		return nil, err
	}
	srv := kgrpc.NewServer(
		kgrpc.Listener(lis),
		kgrpc.Middleware(
			recovery.Recovery(),
			tracing.Server(tracing.WithTracerProvider(tp)),
			logging.Server(logger),
			metrics.Server(metrics.WithRequests(sreq), metrics.WithSeconds(ssec)),
			ratelimit.Server(),
		),
	)
	echov1.RegisterEchoServiceServer(srv, &grpckittest.Backend{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Start(context.Background()) }()
	cc, err := kgrpc.DialInsecure(context.Background(),
		kgrpc.WithEndpoint(addr),
		kgrpc.WithMiddleware(
			recovery.Recovery(),
			tracing.Client(tracing.WithTracerProvider(tp)),
			logging.Client(logger),
			metrics.Client(metrics.WithRequests(creq), metrics.WithSeconds(csec)),
			circuitbreaker.Client(),
		),
	)
	if err != nil {
		_ = srv.Stop(context.Background())
		<-done
		o.release()
		return nil, err
	}
	return newTarget(nameKratos, echov1.NewEchoServiceClient(cc), func() {
		_ = cc.Close()
		_ = srv.Stop(context.Background())
		<-done
	}, o), nil
}
