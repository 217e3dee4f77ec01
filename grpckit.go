// Package grpckit holds the options that configure both builders the same
// way: client.New and server.New each take a grpckit.Option beside their
// own options, as connect-go's Option is both a client and a handler
// option. Logging, metrics, tracing, transport security and message size
// limits are written once here, so that a process's clients and servers
// can share one logger, one metrics registry and one tracer provider, and
// an option means the same on both sides, nil included:
//
//	reg := prometheus.NewRegistry()
//	logs, metrics := grpckit.WithLogger(logger), grpckit.WithMetrics(reg)
//	srv, err := server.New(grpckit.WithInsecure(), logs, metrics, server.WithAdmin("127.0.0.1:9090"))
//	conn, err := client.New(target, logs, metrics, grpckit.WithInsecure())
//
// The builders themselves are in packages server and client; the
// interceptors they assemble are in interceptors/...; docs/defaults.md
// lists every default and docs/architecture.md how the pieces fit.
package grpckit

import (
	"crypto/tls"

	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/interceptors/metrics"
	"github.com/grpckit/grpckit/internal/shared"
)

// Registry is where metrics are registered and gathered from; a
// *prometheus.Registry is one.
type Registry = shared.Registry

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors (go_*, process_*) on it, as the builders make by default: give
// it to every builder of a process with [WithMetrics], and register your
// own collectors on it, to keep all of the process's series in one place.
func NewRegistry() *prometheus.Registry { return shared.NewRegistry() }

// Option configures client.New and server.New alike.
type Option struct {
	apply func(*shared.Common)
}

// ClientOption makes an Option a client.Option.
func (o Option) ClientOption(t shared.Target) { o.apply(t.Shared()) }

// ServerOption makes an Option a server.Option.
func (o Option) ServerOption(t shared.Target) { o.apply(t.Shared()) }

// WithLogger sets the logger of the access log, of the builder's own
// messages and of the interceptors it installs; nil is an error. Default:
// slog.Default() when New runs.
func WithLogger(l *slog.Logger) Option {
	return Option{func(c *shared.Common) {
		if l == nil {
			c.Errorf("grpckit: WithLogger: nil logger")
			return
		}
		c.Logger = l
	}}
}

// WithAccessLog turns the one-line-per-call access log on or off. Lines go
// to the logger (see [WithLogger]) at a level that follows the status code
// (package logging). Default: on.
func WithAccessLog(on bool) Option {
	return Option{func(c *shared.Common) { c.AccessLog = on }}
}

// WithLoggingOptions passes options to the access log (levels per code,
// payloads, health-check logging); see package logging. Default: none.
func WithLoggingOptions(opts ...logging.Option) Option {
	return Option{func(c *shared.Common) { c.LogOpts = append(c.LogOpts, opts...) }}
}

// WithMetrics records the standard Prometheus series (grpc_server_* on a
// server, grpc_client_* and grpckit's balancer series on a client, and
// the limiter, breaker and retry series) on r; nil turns metrics off.
// Clients and servers given the same registry share it, so its /metrics
// shows them all; [NewRegistry] returns one with the Go runtime and
// process collectors on it. The admin handler (package admin) serves the
// registries of every server and client of the process merged, so one
// /metrics shows them all even without a shared registry. Default: a new
// registry of the builder's own (never the global one) made by
// [NewRegistry], available from Server.Registry and Conn.Registry.
func WithMetrics(r Registry, opts ...metrics.Option) Option {
	return Option{func(c *shared.Common) {
		c.Registry = r
		c.MetricsOpts = opts
	}}
}

// WithTracerProvider traces every call with spans from tp, started at the
// tracing slot by package tracing's interceptors (otelgrpc's span names and
// attributes), and propagates trace context. Default: otel's global
// provider if one has been set with otel.SetTracerProvider, otherwise no
// tracing at all.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return Option{func(c *shared.Common) { c.TP = tp }}
}

// WithTraceSampling has grpckit decide which root calls are traced, before
// anything is built: ratio (0 to 1) of the calls that arrive (or start)
// without a trace start one, the others create no span and send no trace
// header; calls with a parent follow it. Leave the provider's sampler at
// its default (parent-based, always on). See tracing.WithSampling for what
// it trades (unsampled calls propagate no trace id). Default: the
// provider's sampler decides every call. It matters only while tracing is
// on (see [WithTracerProvider]).
func WithTraceSampling(ratio float64) Option {
	return Option{func(c *shared.Common) {
		if !(ratio >= 0 && ratio <= 1) {
			c.Errorf("grpckit: WithTraceSampling: ratio %v is not between 0 and 1", ratio)
			return
		}
		c.Sampling = &ratio
	}}
}

// WithMeterProvider records otelgrpc's OpenTelemetry RPC metrics
// (rpc.server.call.duration, rpc.client.call.duration) on mp, through
// the stats handlers of package interceptors/tracing, besides or instead
// of Prometheus. Default: none.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return Option{func(c *shared.Common) { c.MP = mp }}
}

// WithPropagators sets how trace context and baggage are read from
// incoming calls and written to outgoing ones. Default: W3C trace context
// and baggage.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return Option{func(c *shared.Common) { c.Props = p }}
}

// WithTLS uses TLS with cfg: a server presents cfg's certificate, a client
// verifies the server against cfg's roots (the system's when cfg.RootCAs
// is nil) and the target's host name (package certs builds both sides'
// configurations from files, with mutual TLS and reloading). nil is an
// error on both sides: pass &tls.Config{} for a client with the system
// roots. Default: none; each builder requires one of WithTLS,
// [WithTransportCredentials] or [WithInsecure].
func WithTLS(cfg *tls.Config) Option {
	return Option{func(c *shared.Common) {
		if cfg == nil {
			c.Errorf("grpckit: WithTLS: nil *tls.Config (use &tls.Config{} for a client with the system roots)")
			return
		}
		cfg = cfg.Clone()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		c.Creds = credentials.NewTLS(cfg)
	}}
}

// WithTransportCredentials sets the transport credentials (mutual TLS,
// ALTS, ...); nil is an error. Default: as for [WithTLS].
func WithTransportCredentials(creds credentials.TransportCredentials) Option {
	return Option{func(c *shared.Common) {
		if creds == nil {
			c.Errorf("grpckit: WithTransportCredentials: nil credentials")
			return
		}
		c.Creds = creds
	}}
}

// WithInsecure serves or connects in plaintext. Use it only where the
// network is trusted (loopback, a mesh sidecar that terminates mutual TLS);
// both builders refuse to start without transport security unless it is
// asked for by this name. Like [WithTLS] and [WithTransportCredentials],
// the last of them given wins.
func WithInsecure() Option {
	return Option{func(c *shared.Common) { c.Creds = insecure.NewCredentials() }}
}

// WithMaxRecvMsgSize sets the largest message received, in bytes (a
// server's requests, a client's responses); larger ones fail with
// codes.ResourceExhausted. Default: 4 MiB, grpc-go's.
func WithMaxRecvMsgSize(n int) Option {
	return Option{func(c *shared.Common) {
		if n <= 0 {
			c.Errorf("grpckit: WithMaxRecvMsgSize: %d is not a positive size", n)
			return
		}
		c.MaxRecv = n
	}}
}

// WithMaxSendMsgSize sets the largest message sent, in bytes; larger ones
// fail with codes.ResourceExhausted. Default: grpc-go's, no limit below
// math.MaxInt32.
func WithMaxSendMsgSize(n int) Option {
	return Option{func(c *shared.Common) {
		if n <= 0 {
			c.Errorf("grpckit: WithMaxSendMsgSize: %d is not a positive size", n)
			return
		}
		c.MaxSend = n
	}}
}
