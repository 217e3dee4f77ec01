// Package server builds production gRPC servers.
//
// [New] assembles a *grpc.Server with the interceptor chain in the order
// stated in order.go (see [Slot]), the standard grpc.health.v1 service, server
// reflection, panic recovery, keepalive and abuse limits that are safe against hostile clients
// and lenient to other stacks' clients (see docs/defaults.md),
// and the lifecycle that a rolling restart needs:
//
//	srv, err := server.New(grpckit.WithTLS(tlsConfig), grpckit.WithLogger(logger))
//	if err != nil { ... }
//	addsvcv1.RegisterAddServiceServer(srv, impl) // *Server is a grpc.ServiceRegistrar
//	go srv.Serve(lis)                            // health: SERVING
//	...
//	srv.Shutdown(ctx) // NOT_SERVING, drain delay, GracefulStop, forced at ctx's deadline
//
// Serve returns [ErrServerClosed] once Shutdown or Close has been called, in
// the manner of net/http.
package server
