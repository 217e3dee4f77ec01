// Package grpckittest is the kit grpckit's own tests use, for testing your
// services the same way: real grpckit servers and clients on loopback, an
// endpoint source a test feeds by hand, and a backend whose faults a test
// programs.
//
//   - [NewServer] builds a server with server.New and the options you
//     pass, registers your services on it, serves it on 127.0.0.1:0
//     ([NewBufconnServer]: in memory, on a bufconn listener) and closes it
//     when the test ends; [Server.Dial] and [Dial] build clients with
//     client.New, closed when the test ends too.
//   - [Source] is a resolver.Source the test drives: give it to
//     resolver.NewBuilder, dial the builder's scheme with
//     grpc.WithResolvers, then Replace, Update and ReportError as a
//     registry would.
//   - [Faults] fails, delays, hangs or panics calls on command, for the
//     next n calls, every call, or a share of them; it counts the calls.
//     [Backend] is grpckit.echo.v1.EchoService with Faults built in (and
//     room for your own Echo logic); [Faults.UnaryServerInterceptor] and
//     [Faults.StreamServerInterceptor] put the same faults in front of
//     any service.
//
// Everything the kit starts is stopped by a t.Cleanup it registers, so a
// test that uses it stays clean under go.uber.org/goleak.
package grpckittest
