// Package recovery turns a panic in a gRPC handler into a codes.Internal
// status with a generic message, so that one bad request cannot take the
// process down and no stack trace or panic text ever reaches the client.
//
// The panic value and its stack are logged through log/slog at error level
// with the keys grpc.service, grpc.method, panic and stack. The stream
// interceptor is go-grpc-middleware's recovery with this package's safe
// handler, which the middleware lacks (its default returns the stack to the
// caller); the unary one is the same recover written so that the server
// builder chains it without allocating.
//
// The server builder installs these interceptors by default; use this package
// directly only when assembling a chain by hand. When recovery would be the
// server's only unary interceptor, the builder wraps the registered services
// with [WrapService] instead: grpc-go allocates twice per unary call for any
// unary interceptor, and a server with everything else off then installs
// none (streams keep the interceptor, a cost per stream).
package recovery
