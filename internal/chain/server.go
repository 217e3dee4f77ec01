package chain

import (
	"context"

	"google.golang.org/grpc"
)

// Server chains unary server interceptors without allocating per call.
//
// grpc-go's own chaining (grpc.ChainUnaryInterceptor) hands each
// interceptor a handler closure built for the call: one allocation and one
// more indirect call per interceptor per call (measured against bare
// grpc-go over loopback in internal/benchkit: about 1% of a bare call's CPU
// per level). On the client the final invoker is the same function value on
// every call, so [UnaryClient] composes the chain once; on the server the
// final handler is a new closure per call (generated code builds it), so
// the chain is written in continuation-passing form instead: a [Stage]
// calls next(ctx, req, info, handler) where an interceptor calls
// handler(ctx, req), and [UnaryServer] composes the next functions once.
//
// grpckit's interceptor packages write their unary server interceptors as
// stages and export only the ordinary interceptor ([Stage.Interceptor]);
// the server builder takes the stage back with [StageOf]. Ordinary
// interceptors join a chain through [FromInterceptor], at grpc-go's usual
// cost.

// Next continues a call: the rest of the chain, then the handler.
type Next func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error)

// Stage is a unary server interceptor in continuation-passing form. It
// must call next (at most once per attempt, like a handler) to continue
// the call.
type Stage func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next Next) (any, error)

// callHandler ends every chain: it calls the handler.
func callHandler(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(ctx, req)
}

// probe is the call info with which [StageOf] asks an interceptor made by
// [Stage.Interceptor] for its stage. No real call carries it.
var probe = &grpc.UnaryServerInfo{FullMethod: "/grpckit.internal.chain/StageOf"}

// Interceptor returns s as an ordinary interceptor, without a per-call
// allocation. [StageOf] recovers s from it.
func (s Stage) Interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info == probe {
			*req.(*Stage) = s
			return nil, nil
		}
		return s(ctx, req, info, handler, callHandler)
	}
}

// StageOf returns the stage behind i when i was made by
// [Stage.Interceptor], and i adapted by [FromInterceptor] otherwise. It
// calls i once with a probe: give it only interceptors of this module.
func StageOf(i grpc.UnaryServerInterceptor) Stage {
	var s Stage
	_, _ = i(context.Background(), &s, probe, func(context.Context, any) (any, error) { return nil, nil })
	if s != nil {
		return s
	}
	return FromInterceptor(i)
}

// FromInterceptor adapts an ordinary interceptor: it gets a handler closure
// per call, as in grpc-go's own chain.
func FromInterceptor(i grpc.UnaryServerInterceptor) Stage {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next Next) (any, error) {
		return i(ctx, req, info, func(ctx context.Context, req any) (any, error) {
			return next(ctx, req, info, handler)
		})
	}
}

// UnaryServer returns one interceptor running stages in order, the first
// outermost. It returns nil for no stages.
func UnaryServer(stages ...Stage) grpc.UnaryServerInterceptor {
	if len(stages) == 0 {
		return nil
	}
	next := Next(callHandler)
	for i := len(stages) - 1; i >= 1; i-- {
		s, inner := stages[i], next
		next = func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return s(ctx, req, info, handler, inner)
		}
	}
	first := stages[0]
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return first(ctx, req, info, handler, next)
	}
}
