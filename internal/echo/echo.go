// Package echo implements grpckit.echo.v1.EchoService for tests, benchmarks
// and examples. A message can ask the server to misbehave:
//
//	"panic"            the handler panics
//	"sleep 50ms"       the handler waits that long (or until the call ends)
//	"code Unavailable" the handler fails with that status code
//
// Any other message is echoed. The server counts the calls it receives.
package echo

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// Server is the echo service. The zero value is ready to use.
type Server struct {
	echov1.UnimplementedEchoServiceServer
	calls atomic.Int64
}

// Calls returns how many calls, of any shape, reached the server.
func (s *Server) Calls() int64 { return s.calls.Load() }

// behave acts on a message's instruction; it returns a non-nil error when the
// call must fail.
func behave(ctx context.Context, msg string) error {
	switch {
	case msg == "panic":
		panic("echo: asked to panic")
	case strings.HasPrefix(msg, "sleep "):
		d, err := time.ParseDuration(strings.TrimPrefix(msg, "sleep "))
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "echo: bad duration: %v", err)
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	case strings.HasPrefix(msg, "code "):
		name := strings.TrimPrefix(msg, "code ")
		for c := codes.OK; c <= codes.Unauthenticated; c++ {
			if c.String() == name {
				if c == codes.OK {
					return nil
				}
				return status.Error(c, "echo: asked to fail")
			}
		}
		return status.Errorf(codes.InvalidArgument, "echo: unknown code %q", name)
	}
	return nil
}

// Echo returns the request's message.
func (s *Server) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	s.calls.Add(1)
	if err := behave(ctx, req.GetMessage()); err != nil {
		return nil, err
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// ServerStream sends the message back Count times.
func (s *Server) ServerStream(req *echov1.ServerStreamRequest, stream echov1.EchoService_ServerStreamServer) error {
	s.calls.Add(1)
	if req.GetCount() < 0 {
		return status.Error(codes.InvalidArgument, "echo: negative count")
	}
	if err := behave(stream.Context(), req.GetMessage()); err != nil {
		return err
	}
	for i := int32(0); i < req.GetCount(); i++ {
		if err := stream.Send(&echov1.ServerStreamResponse{Message: req.GetMessage(), Index: i}); err != nil {
			return err
		}
	}
	return nil
}

// ClientStream joins the messages it receives.
func (s *Server) ClientStream(stream echov1.EchoService_ClientStreamServer) error {
	s.calls.Add(1)
	var parts []string
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&echov1.ClientStreamResponse{Message: strings.Join(parts, ""), Count: int32(len(parts))})
		}
		if err != nil {
			return err
		}
		if err := behave(stream.Context(), req.GetMessage()); err != nil {
			return err
		}
		parts = append(parts, req.GetMessage())
	}
}

// BidiStream echoes every message it receives.
func (s *Server) BidiStream(stream echov1.EchoService_BidiStreamServer) error {
	s.calls.Add(1)
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := behave(stream.Context(), req.GetMessage()); err != nil {
			return err
		}
		if err := stream.Send(&echov1.BidiStreamResponse{Message: req.GetMessage()}); err != nil {
			return err
		}
	}
}

// FailFirst is an echo service whose first N unary calls fail with Code
// (Unavailable when zero), for retry and breaker tests.
type FailFirst struct {
	echov1.UnimplementedEchoServiceServer
	N     int64
	Code  codes.Code
	calls atomic.Int64
}

// Calls returns how many unary calls reached the service.
func (f *FailFirst) Calls() int64 { return f.calls.Load() }

// Echo fails the first N calls, then echoes.
func (f *FailFirst) Echo(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if f.calls.Add(1) <= f.N {
		code := f.Code
		if code == codes.OK {
			code = codes.Unavailable
		}
		return nil, status.Error(code, "echo: failing on purpose")
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}
