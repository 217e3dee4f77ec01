package grpckittest

import (
	"context"
	"errors"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// Backend is grpckit.echo.v1.EchoService (package
// github.com/grpckit/grpckit/proto/grpckit/echo/v1) with [Faults] built
// in: every call, of any of the four shapes, is counted and suffers its
// fault when it starts, then is answered. Echo returns the request's
// message (or what Handler returns), ServerStream sends the message back
// Count times, ClientStream joins the messages it receives, BidiStream
// echoes each message. The zero value is ready to use; it must not be
// copied after first use.
type Backend struct {
	echov1.UnimplementedEchoServiceServer

	// Faults decides the fault of each call and counts the calls.
	Faults Faults
	// Handler, when set, answers Echo calls that no fault failed, in place
	// of the echo: your own logic (calling another service, checking
	// metadata) behind the programmed faults. Default: nil, echo the
	// message.
	Handler func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error)
}

// Register registers b as the EchoService of r; pass it to [NewServer]:
//
//	srv := grpckittest.NewServer(t, backend.Register)
func (b *Backend) Register(r grpc.ServiceRegistrar) { echov1.RegisterEchoServiceServer(r, b) }

// Echo implements echov1.EchoServiceServer.
func (b *Backend) Echo(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	if err := b.Faults.inject(ctx); err != nil {
		return nil, err
	}
	if b.Handler != nil {
		return b.Handler(ctx, req)
	}
	return &echov1.EchoResponse{Message: req.GetMessage()}, nil
}

// ServerStream implements echov1.EchoServiceServer.
func (b *Backend) ServerStream(req *echov1.ServerStreamRequest, stream echov1.EchoService_ServerStreamServer) error {
	if err := b.Faults.inject(stream.Context()); err != nil {
		return err
	}
	if req.GetCount() < 0 {
		return status.Error(codes.InvalidArgument, "grpckittest: negative count")
	}
	for i := range req.GetCount() {
		if err := stream.Send(&echov1.ServerStreamResponse{Message: req.GetMessage(), Index: i}); err != nil {
			return err
		}
	}
	return nil
}

// ClientStream implements echov1.EchoServiceServer.
func (b *Backend) ClientStream(stream echov1.EchoService_ClientStreamServer) error {
	if err := b.Faults.inject(stream.Context()); err != nil {
		return err
	}
	var parts []string
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&echov1.ClientStreamResponse{Message: strings.Join(parts, ""), Count: int32(len(parts))})
		}
		if err != nil {
			return err
		}
		parts = append(parts, req.GetMessage())
	}
}

// BidiStream implements echov1.EchoServiceServer.
func (b *Backend) BidiStream(stream echov1.EchoService_BidiStreamServer) error {
	if err := b.Faults.inject(stream.Context()); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&echov1.BidiStreamResponse{Message: req.GetMessage()}); err != nil {
			return err
		}
	}
}
