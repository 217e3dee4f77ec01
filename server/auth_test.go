package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

func authVerifier(t *testing.T) (*auth.JWT, func(sub string) string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{"k": &key.PublicKey}), "iss", "aud")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(sub string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"sub": sub, "iss": "iss", "aud": "aud", "exp": time.Now().Add(time.Hour).Unix(),
		})
		tok.Header["kid"] = "k"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return v, sign
}

// WithAuth installs authentication at SlotAuth: inside the limits (their
// slot sees its rejections), outside validation and the user's
// interceptors (they never see a rejected call); the handler sees the
// identity; health stays public.
func TestWithAuth(t *testing.T) {
	v, sign := authVerifier(t)
	rec := &recorder{codes: map[string]codes.Code{}}
	b := &grpckittest.Backend{Handler: func(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		id, _ := auth.FromContext(ctx)
		return &echov1.EchoResponse{Message: id.Subject}, nil
	}}
	opts := append(rec.options(),
		grpckit.WithLogger(slog.New(slog.DiscardHandler)),
		server.WithAuth(auth.WithVerifier(v), auth.WithRules(
			auth.Rule{Method: echov1.EchoService_Echo_FullMethodName, Subjects: []string{"alice"}},
			auth.Rule{Method: echov1.EchoService_ServerStream_FullMethodName, Subjects: []string{"alice"}},
		)))
	in := grpckittest.NewServer(t, b.Register, opts...)
	conn := in.Dial(t, grpckit.WithLogger(slog.New(slog.DiscardHandler)))
	ec := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 10*time.Second)
	withToken := func(sub string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+sign(sub))
	}
	outer := []string{"tracing", "metrics", "logging", "recovery", "limit"}
	all := []string{"tracing", "metrics", "logging", "recovery", "limit", "auth", "validation", "user"}

	for _, tc := range []struct {
		name string
		ctx  context.Context
		want codes.Code
		seen []string
	}{
		{"no token", ctx, codes.Unauthenticated, outer},
		{"forbidden", withToken("bob"), codes.PermissionDenied, outer},
		{"allowed", withToken("alice"), codes.OK, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ec.Echo(tc.ctx, &echov1.EchoRequest{Message: "hi"})
			if code := status.Code(err); code != tc.want {
				t.Fatalf("Echo: got %v, want %v", code, tc.want)
			}
			if tc.want == codes.OK && resp.GetMessage() != "alice" {
				t.Errorf("handler saw subject %q, want alice", resp.GetMessage())
			}
			seen, got := rec.take()
			if !slices.Equal(seen, tc.seen) {
				t.Errorf("unary: slots seen %v, want %v", seen, tc.seen)
			}
			if got["limit"] != tc.want {
				t.Errorf("unary: limit slot saw %v, want %v", got["limit"], tc.want)
			}

			ss, err := ec.ServerStream(tc.ctx, &echov1.ServerStreamRequest{Message: "hi", Count: 1})
			for err == nil {
				_, err = ss.Recv()
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if code := status.Code(err); code != tc.want {
				t.Fatalf("ServerStream: got %v, want %v", err, tc.want)
			}
			if seen, _ := rec.take(); !slices.Equal(seen, tc.seen) {
				t.Errorf("stream: slots seen %v, want %v", seen, tc.seen)
			}
		})
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: got %v, want OK", err)
	}
}

// Limits run before auth: a call over the rate limit is refused with
// ResourceExhausted without being authenticated.
func TestWithAuthAfterLimits(t *testing.T) {
	v, _ := authVerifier(t)
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register,
		grpckit.WithLogger(slog.New(slog.DiscardHandler)),
		server.WithRateLimit(0.001, 1), server.WithAuth(auth.WithVerifier(v)))
	ec := echov1.NewEchoServiceClient(in.Dial(t, grpckit.WithLogger(slog.New(slog.DiscardHandler))))
	ctx := grpckittest.Context(t, 10*time.Second)
	for i, want := range []codes.Code{codes.Unauthenticated, codes.ResourceExhausted} {
		if code := echoCode(ctx, ec, "hi"); code != want {
			t.Errorf("call %d without a token: got %v, want %v", i, code, want)
		}
	}
}

func TestWithAuthErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []auth.Option
		want error
	}{
		{"no verifier", nil, auth.ErrNoAuthenticator},
		{"bad rule", []auth.Option{auth.WithMTLS(), auth.WithRules(auth.Rule{Method: "nope", Subjects: []string{"a"}})}, auth.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := server.New(grpckit.WithInsecure(), server.WithAuth(tc.opts...)); !errors.Is(err, tc.want) {
				t.Errorf("New: got %v, want %v", err, tc.want)
			}
		})
	}
}
