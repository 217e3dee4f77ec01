// Package gateway serves a grpckit server's services to HTTP/JSON and
// browser clients: Connect, gRPC-Web and REST (HTTP/JSON transcoding),
// through the server's own interceptor chain.
//
// [New] wraps a server (a *server.Server, or any *grpc.Server) in an
// http.Handler built with connectrpc.com/vanguard. Each request, whatever
// its protocol, is transcoded into a gRPC call on the server's ServeHTTP
// (grpc.Server.ServeHTTP), so it runs through the whole chain the builder
// installed: tracing, metrics, the access log, recovery, rate and
// concurrency limits, load shedding, auth, validation and the user's
// interceptors, exactly as a call on the gRPC port does.
//
//	srv, err := server.New(grpckit.WithTLS(tlsConfig), server.WithAuth(...), server.WithRateLimit(...))
//	echov1.RegisterEchoServiceServer(srv, impl) // register first: New serves what is registered
//	gw, err := gateway.New(srv)
//	go srv.Serve(grpcLis)                       // gRPC on its own port, grpc-go's transport
//	hs := &http.Server{Handler: gw, ...}        // HTTP on another; see Timeouts below
//	go hs.ServeTLS(httpLis, "", "")
//
// # What it serves
//
// Every service registered when New runs ([WithServices] narrows that):
//
//   - Connect, unary and streaming, with JSON (application/json) or binary
//     protobuf (application/proto) messages, from connect-go, connect-es
//     in browsers, or curl (see below).
//   - gRPC-Web (application/grpc-web, +proto or +json; not
//     grpc-web-text), unary and server streaming, for grpc-web clients in
//     browsers.
//   - REST on the routes of the methods' google.api.http annotations, and
//     of [WithRules] for .proto files without them (grpckit's own have
//     none), with request fields from the path, the query and the body.
//   - gRPC itself: the gateway passes gRPC requests through to the server,
//     so an HTTP/2 port serving the gateway also serves gRPC clients.
//
// A POST of a JSON body to /package.Service/Method is a Connect call, with
// or without Connect's optional Connect-Protocol-Version header:
//
//	curl -H 'Content-Type: application/json' -d '{"message":"hi"}' \
//		https://host/grpckit.echo.v1.EchoService/Echo
//
// Connect's GET form (cacheable) serves only the methods whose .proto marks
// them idempotency_level = NO_SIDE_EFFECTS.
//
// Request headers become the call's metadata (the Authorization header is
// what auth reads), the caller's address (http.Request.RemoteAddr) is the
// call's peer (what rate limits per peer and the access log see), and
// with TLS the connection's state is the peer's credentials.TLSInfo, so
// mTLS auth works when the http.Server verifies client certificates.
// Connect-Timeout-Ms (or grpc-timeout) becomes the call's deadline.
//
// # Errors
//
// A call's gRPC status becomes the client protocol's error. For Connect,
// an HTTP status and a JSON body:
//
//	HTTP/1.1 429 Too Many Requests
//	Content-Type: application/json
//
//	{"code":"resource_exhausted","message":"too many requests"}
//
// with Connect's mapping of codes to HTTP statuses (invalid_argument,
// failed_precondition and out_of_range 400, unauthenticated 401,
// permission_denied 403, not_found 404, resource_exhausted 429, unknown,
// internal and data_loss 500, unimplemented 501, unavailable 503,
// deadline_exceeded 504) and the status details, base64, under "details".
// REST calls get the same HTTP statuses with a google.rpc.Status JSON body
// ({"code":8,"message":"...","details":[]}); gRPC-Web calls get
// grpc-status trailers. A JSON body that does not decode is
// invalid_argument (400); a message over [WithMaxMessageBytes] is
// resource_exhausted. A call the server could not take because it has
// stopped, or that it cancelled while stopping, is unavailable (503).
//
// # One port or two
//
// Recommended: gRPC keeps its own port, served by server.Server.Serve with
// grpc-go's own HTTP/2 transport, and the gateway gets another, on an
// http.Server. The gRPC port then keeps everything the builder configures
// (see below), and each port's exposure can differ.
//
// One port works too: serve the gateway on an HTTP/2 http.Server (TLS, or
// unencrypted HTTP/2 with http.Server.Protocols; no h2c wrapper is needed
// since Go 1.24) and gRPC clients reach the services through it, because
// the gateway passes gRPC through. No content-type router is needed, or
// provided: the gateway already tells the protocols apart. gRPC calls then
// take grpc.Server.ServeHTTP too, with its trade-offs:
//
//	hs.Protocols = new(http.Protocols)
//	hs.Protocols.SetHTTP1(true)
//	hs.Protocols.SetUnencryptedHTTP2(true) // gRPC and Connect over h2c; TLS needs neither line
//
// # Trade-offs of grpc.Server.ServeHTTP
//
// grpc-go documents ServeHTTP as experimental, slower than its own
// transport, and without some of its features. Every gateway call uses it,
// and in addition is transcoded (JSON to protobuf and back, buffered
// message by message). What the server's transport options set does not
// apply to gateway connections, whose HTTP server owns them: keepalive
// pings and their enforcement, the concurrent stream limit, the header
// list limit, the handshake timeout, the flow-control windows, the
// connection cap (server.WithMaxConnections) and transport credentials (a
// server built with grpckit.WithTLS does not make the gateway's port TLS:
// give the http.Server its tls.Config). Message size limits and
// everything in the interceptor chain apply. Bidirectional streaming
// needs HTTP/2 end to end; browsers' Connect and gRPC-Web clients stream
// only from the server. Cross-origin browser clients need CORS, which the
// gateway does not answer: wrap the handler (connectrpc.com/cors lists the
// headers to allow).
//
// # Lifecycle
//
// The gateway serves a server whether or not Serve runs, but health
// reports SERVING, and a registrar announces the server, only once Serve
// has run on some listener. To stop, shut the HTTP server down first
// (http.Server.Shutdown waits for the gateway calls in flight), then the
// server (server.Server.Shutdown): grpc-go's graceful stop does not wait
// for calls it serves through ServeHTTP but cancels them, and they fail
// with unavailable.
//
// # Timeouts
//
// An http.Server without timeouts lets a client hold a connection and
// its goroutine for ever (slowloris). Always set ReadHeaderTimeout and
// IdleTimeout; set ReadTimeout and WriteTimeout, which bound a whole
// request and a whole response, only if the gateway serves no streaming
// calls, as they would cut healthy streams (rely on call deadlines and the
// server's limits for those). http.TimeoutHandler does not work in front
// of the gateway: its writer cannot flush, which streaming and gRPC need.
//
//	hs := &http.Server{
//		Addr:              ":8443",
//		Handler:           gw,
//		TLSConfig:         tlsConfig,
//		ReadHeaderTimeout: 5 * time.Second,
//		IdleTimeout:       2 * time.Minute,
//		MaxHeaderBytes:    16 << 10,                                  // as server.DefaultMaxHeaderListSize
//		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 100}, // as server.DefaultMaxConcurrentStreams
//	}
//
// # Why vanguard
//
// grpc-gateway needs generated code for each service and
// google.api.http annotations, serves neither Connect nor gRPC-Web, and
// calls the server as a gRPC client over a connection of its own, so that
// rate limits per peer and mTLS auth would see the gateway rather than the
// caller. Vanguard reads the services' schemas at run time, serves every
// registered service without generated code, and calls the server in
// process.
package gateway
