package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/interceptors/validate"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// WithValidation installs validation at SlotValidation: an invalid request
// (EchoRequest.message has max_len = 1024) fails with InvalidArgument and
// BadRequest details, is seen by every slot outside validation and never
// reaches the user's interceptors or the handler.
func TestWithValidation(t *testing.T) {
	rec := &recorder{codes: map[string]codes.Code{}}
	var calls atomic.Int64
	b := &grpckittest.Backend{Handler: func(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		calls.Add(1)
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}}
	opts := append(rec.options(), grpckit.WithLogger(slog.New(slog.DiscardHandler)), server.WithValidation())
	in := grpckittest.NewServer(t, b.Register, opts...)
	ec := echov1.NewEchoServiceClient(in.Dial(t, grpckit.WithLogger(slog.New(slog.DiscardHandler))))
	ctx := grpckittest.Context(t, 10*time.Second)
	outer := []string{"tracing", "metrics", "logging", "recovery", "limit", "auth"}
	all := []string{"tracing", "metrics", "logging", "recovery", "limit", "auth", "validation", "user"}

	for _, tc := range []struct {
		name string
		msg  string
		want codes.Code
		seen []string
	}{
		{"valid", "hi", codes.OK, all},
		{"invalid", strings.Repeat("x", 1025), codes.InvalidArgument, outer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := calls.Load()
			_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: tc.msg})
			if code := status.Code(err); code != tc.want {
				t.Fatalf("Echo: got %v, want %v", err, tc.want)
			}
			want := int64(0)
			if tc.want == codes.OK {
				want = 1
			}
			if got := calls.Load() - before; got != want {
				t.Errorf("handler calls %d, want %d", got, want)
			}
			seen, got := rec.take()
			if !slices.Equal(seen, tc.seen) {
				t.Errorf("slots seen %v, want %v", seen, tc.seen)
			}
			if got["auth"] != tc.want {
				t.Errorf("auth slot saw %v, want %v", got["auth"], tc.want)
			}
			if tc.want != codes.InvalidArgument {
				return
			}
			var fields []string
			for _, d := range status.Convert(err).Details() {
				if br, ok := d.(*errdetails.BadRequest); ok {
					for _, fv := range br.GetFieldViolations() {
						fields = append(fields, fv.GetField())
					}
				}
			}
			if !slices.Equal(fields, []string{"message"}) {
				t.Errorf("BadRequest fields %v, want [message]", fields)
			}
		})
	}

	// Streams: every received message is validated (no rule fails on
	// BidiStreamRequest, so it passes through the validation slot).
	s, err := ec.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: strings.Repeat("x", 2000)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatalf("Recv: %v", err)
	}
	_ = s.CloseSend()
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after CloseSend: %v, want io.EOF", err)
	}
	if seen, _ := rec.take(); !slices.Equal(seen, all) {
		t.Errorf("stream: slots seen %v, want %v", seen, all)
	}
}

// The order is limits → auth → validation: an invalid request with a valid
// token fails validation, without a token it fails auth, and over the rate
// limit it fails the limit.
func TestWithValidationOrder(t *testing.T) {
	v, sign := authVerifier(t)
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register,
		grpckit.WithLogger(slog.New(slog.DiscardHandler)),
		server.WithRateLimit(0.001, 2),
		server.WithAuth(auth.WithVerifier(v)),
		server.WithValidation(validate.WithResponses(true)))
	ec := echov1.NewEchoServiceClient(in.Dial(t, grpckit.WithLogger(slog.New(slog.DiscardHandler))))
	ctx := grpckittest.Context(t, 10*time.Second)
	withToken := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+sign("alice"))
	bad := strings.Repeat("x", 1025)
	for i, tc := range []struct {
		ctx  context.Context
		want codes.Code
	}{
		{withToken, codes.InvalidArgument},
		{ctx, codes.Unauthenticated},
		{withToken, codes.ResourceExhausted},
	} {
		if code := echoCode(tc.ctx, ec, bad); code != tc.want {
			t.Errorf("call %d: got %v, want %v", i, code, tc.want)
		}
	}
}
