// Package admin is the operator's view of a process: an http.Handler that
// shows every grpckit server and client of the process, live, for a person
// (an HTML page that refreshes itself) and for scripts (the same data as
// JSON), beside /metrics, /debug/vars and, on request, pprof.
//
// Mount it on your own mux, behind your own authentication, or serve it on
// an address of its own with [Handler.Listen] (loopback is the safe
// choice); server.WithAdmin does the latter for a server. A client-only
// job serves it the same way: the handler is fed by the process, not by a
// server.
//
//	h, err := admin.New()
//	mux.Handle("/admin/", http.StripPrefix("/admin", requireOperator(h)))
//
// It serves:
//
//   - / : the page. Per server: addresses, health of each service,
//     registrations and the registry's status, calls in flight, done and
//     failed, limiter rejections, recent errors. Per client: target,
//     connection state, resolved endpoints with the balancer's latency,
//     share of calls, score, in-flight calls and ejections, breaker state
//     per method with its recent history, retry budget, hedging (per
//     hedged method: the current delay, calls, hedges sent and won, hedges
//     the budget refused), limiter rejections, recent errors; and each
//     resolver's registry status. It
//     needs no CDN and no build step: its script and style are embedded.
//   - /debug/grpckit/state: the page's data as JSON (the JSON twin), for
//     scripts: {"time", "process", "servers", "clients", "resolvers",
//     "balancers"}; field names are stable.
//   - /debug/grpckit/resolvers and /debug/grpckit/balancers: JSON of
//     resolver.Snapshot and balancer.Snapshot.
//   - /metrics: the registries of the process's grpckit servers and
//     clients (and [WithRegistry]'s), merged into what one shared registry
//     would show, in the Prometheus text format or OpenMetrics. The
//     builders' default registries carry the Go runtime and process
//     collectors. To keep everything in one registry, give the same one to
//     every builder: grpckit.WithMetrics(reg) with
//     reg := grpckit.NewRegistry().
//   - /healthz: 200 while every grpckit server of the process is SERVING
//     (and in a process with none), 503 otherwise.
//   - /debug/vars: expvar's variables as JSON (memstats, and the
//     application's from metrics.Expvar), less "cmdline", which may hold
//     secrets.
//   - /debug/pprof/ with [WithPprof] only.
//
// grpc's own admin services (channelz, and CSDS where xDS is linked in)
// are gRPC services, not HTTP: a server gets them with
// server.WithGRPCAdmin; a client-only job starts a grpckit server with
// only that option on a loopback port, and grpcdebug or grpcurl see every
// channel of the process there.
package admin
