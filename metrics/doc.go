// Package metrics is the metrics API for applications, beside the series
// grpckit's interceptors record: counters, gauges and histograms with
// label values, created from a [Provider] on one of four backends, or on
// several at once with [Multi].
//
//   - [Prometheus]: on a Prometheus registry. Given the registry the
//     builders use, the application's series appear on the same /metrics
//     that the admin handler (package admin) serves, beside grpc_server_*,
//     grpc_client_* and the Go runtime and process series (go_*,
//     process_*) that grpckit.NewRegistry carries from the first line.
//   - [OTel]: on an OpenTelemetry MeterProvider, so that its readers export
//     them, over OTLP or otherwise; [OTelRuntime] adds the Go runtime's.
//   - [Expvar]: with Go's expvar package, on /debug/vars of the admin
//     handler, beside expvar's own "memstats".
//   - [NewStatsD]: to a StatsD or DogStatsD server over UDP, with the Go
//     runtime's gauges every 10s.
//
// A metric is a family: With binds it to label values and returns a child
// whose methods (Inc, Add, Set, Observe) do not allocate. With looks the
// values up (tens of nanoseconds, one small allocation): keep the child
// where the hot path needs it.
//
//	srv, err := server.New(grpckit.WithInsecure(), server.WithAdmin("127.0.0.1:9090"))
//	...
//	m := metrics.Prometheus(srv.Registry()) // the builder's registry: same /metrics
//	calcs, err := m.Counter("app_calculations_total", "Calculations done, by operation.", "op")
//	...
//	sums := calcs.With("sum") // bound once
//	sums.Inc()                // in the handler
//
// To share one registry among several builders, make it with
// grpckit.NewRegistry, give it to each with grpckit.WithMetrics(reg), and
// to metrics.Prometheus(reg).
//
// The same code runs on any backend: write it against [Provider] and
// choose the backend in main. Names and label names are those every
// backend accepts (see [Provider]). Every combination of label values
// used is kept for the life of the process, on every backend: label
// values come from a small, known set (an operation, a status), never
// from a user id or a request's text.
package metrics
