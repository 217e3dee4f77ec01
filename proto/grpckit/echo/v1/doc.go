// Package echov1 holds the Go code buf generates from
// grpckit/echo/v1/echo.proto: the messages and the client and server of
// grpckit.echo.v1.EchoService, a service with one method of each of the
// four gRPC call shapes (unary, server stream, client stream, bidirectional
// stream). grpckit's tests, benchmarks and examples drive every interceptor
// through it; use it the same way to try a chain of your own.
//
// Implement [EchoServiceServer] (embed [UnimplementedEchoServiceServer]),
// register it with [RegisterEchoServiceServer], and call it through
// [NewEchoServiceClient]. The generated files (*.pb.go) are never edited by
// hand: change echo.proto and run buf generate.
package echov1
