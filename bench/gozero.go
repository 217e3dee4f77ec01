package main

import (
	"errors"
	"net"
	"time"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/zrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// goZeroConfig is go-zero's zrpc server and client with the defaults of
// their configuration structs (conf.FillDefault, as loading an empty YAML
// file gives): on the server tracing, recovery, stat logging, Prometheus,
// the breaker, CPU-based shedding and a 2 s timeout; on the client
// tracing, duration logging, Prometheus, the breaker, a 2 s timeout and
// p2c_ewma. Changed, to stay on loopback: the dev server (which serves
// /metrics and pprof and switches go-zero's Prometheus metrics on) listens
// on 127.0.0.1 and a free port instead of :6060; telemetry's agent is off
// and its tracer provider is built here as the agent builds it with an
// exporter (sampler ParentBased(TraceIDRatioBased(Telemetry.Sampler)),
// Sampler's default 1.0, a batch processor) but exports to a
// discardExporter. logx writes to logSink.
//
// go-zero's server cannot be stopped short of the process's shutdown
// signal: its close stops only the client. It must run last (see
// allConfigs) and is not in the test.
func goZeroConfig() config {
	return config{name: nameGoZero, start: startGoZero}
}

func startGoZero() (*target, error) {
	logx.SetWriter(logx.NewWriter(logSink))
	lis, addr, err := listen()
	if err != nil {
		return nil, err
	}
	_ = lis.Close() // go-zero listens itself
	dev, _, err := listen()
	if err != nil {
		return nil, err
	}
	devPort := dev.Addr().(*net.TCPAddr).Port
	_ = dev.Close()

	var sc zrpc.RpcServerConf
	if err := conf.FillDefault(&sc); err != nil {
		return nil, err
	}
	sc.Name = "bench"
	sc.ListenOn = addr
	sc.DevServer.Host = "127.0.0.1"
	sc.DevServer.Port = devPort
	sc.Telemetry.Disabled = true
	tp := newTracerProvider(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sc.Telemetry.Sampler)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", sc.Name))))
	otel.SetTracerProvider(tp)

	srv, err := zrpc.NewServer(sc, func(s *grpc.Server) {
		echov1.RegisterEchoServiceServer(s, &grpckittest.Backend{})
	})
	if err != nil {
		return nil, err
	}
	// SetUp pointed logx at the console.
	logx.SetWriter(logx.NewWriter(logSink))
	go srv.Start()

	var cc zrpc.RpcClientConf
	if err := conf.FillDefault(&cc); err != nil {
		return nil, err
	}
	cc.Endpoints = []string{addr}
	cli, err := zrpc.NewClient(cc)
	if err != nil {
		return nil, err
	}
	// The server cannot be stopped (go-zero's Stop only closes its logs);
	// the target owns the tracer provider, flushed before each round like
	// the others'.
	t := newTarget(nameGoZero, echov1.NewEchoServiceClient(cli.Conn()), func() { _ = cli.Conn().Close() }, owned{tp: tp})
	// The server starts listening in its own goroutine.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := warm(t, 1); err == nil {
			return t, nil
		} else if time.Now().After(deadline) {
			t.close()
			return nil, errors.Join(errors.New("go-zero server did not answer"), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
