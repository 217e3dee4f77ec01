// Package calltype is the one place that decides a call's type (unary,
// client, server or bidi stream), the grpc_type of go-grpc-middleware's
// interceptors, for every grpckit interceptor that reports it.
package calltype

import (
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"google.golang.org/grpc"
)

// Type is a call's type.
type Type uint8

// The call types, in the order of go-grpc-middleware's constants.
const (
	Unary Type = iota
	ClientStream
	ServerStream
	BidiStream
	// Count is the number of types, for arrays indexed by Type.
	Count
)

var names = [Count]interceptors.GRPCType{interceptors.Unary, interceptors.ClientStream, interceptors.ServerStream, interceptors.BidiStream}

// GRPCType returns go-grpc-middleware's name of t ("unary",
// "client_stream", "server_stream", "bidi_stream").
func (t Type) GRPCType() interceptors.GRPCType { return names[t] }

// String returns the name of t.
func (t Type) String() string { return string(names[t]) }

// OfStream returns the type of a call that went through a stream
// interceptor, as go-grpc-middleware decides it: a stream that declares
// neither side streaming is a bidi stream (it was opened as a stream).
// Unary interceptors' calls are [Unary].
func OfStream(clientStreams, serverStreams bool) Type {
	switch {
	case clientStreams && !serverStreams:
		return ClientStream
	case !clientStreams && serverStreams:
		return ServerStream
	}
	return BidiStream
}

// OfMethod returns the type of a registered method: one that streams on
// neither side is unary.
func OfMethod(m grpc.MethodInfo) Type {
	if !m.IsClientStream && !m.IsServerStream {
		return Unary
	}
	return OfStream(m.IsClientStream, m.IsServerStream)
}
