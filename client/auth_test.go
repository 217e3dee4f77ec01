package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/testcert"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// authServer starts a server that requires a JWT and answers with the
// caller's subject, and returns a token for alice.
func authServer(t *testing.T, tlsCfg *tls.Config) (*grpckittest.Server, *grpckittest.Backend, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{"k": &key.PublicKey}), "iss", "aud")
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": "alice", "iss": "iss", "aud": "aud", "exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "k"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	b := &grpckittest.Backend{Handler: func(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		id, _ := auth.FromContext(ctx)
		return &echov1.EchoResponse{Message: id.Subject}, nil
	}}
	opts := []server.Option{grpckit.WithLogger(slog.New(slog.DiscardHandler)), server.WithAuth(auth.WithVerifier(v))}
	if tlsCfg != nil {
		opts = append(opts, grpckit.WithTLS(tlsCfg))
	}
	return grpckittest.NewServer(t, b.Register, opts...), b, signed
}

func TestWithPerRPCToken(t *testing.T) {
	pair, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	quiet := grpckit.WithLogger(slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		name    string
		tls     bool
		opts    []auth.ClientOption
		want    codes.Code
		handled int64
	}{
		{"TLS", true, nil, codes.OK, 1},
		{"plaintext allowed", false, []auth.ClientOption{auth.WithInsecureTransport()}, codes.OK, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srvTLS *tls.Config
			if tc.tls {
				srvTLS = pair.Server
			}
			in, b, tok := authServer(t, srvTLS)
			opts := []client.Option{quiet, client.WithPerRPCToken(auth.Cached(auth.StaticToken(tok), time.Minute), tc.opts...)}
			if tc.tls {
				opts = append(opts, grpckit.WithTLS(pair.Client))
			}
			ec := echov1.NewEchoServiceClient(in.Dial(t, opts...))
			ctx := grpckittest.Context(t, 10*time.Second)
			resp, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			if code := status.Code(err); code != tc.want {
				t.Fatalf("Echo: got %v, want %v", err, tc.want)
			}
			if tc.want == codes.OK && resp.GetMessage() != "alice" {
				t.Errorf("handler saw %q, want alice", resp.GetMessage())
			}
			if got := b.Faults.Calls(); got != tc.handled {
				t.Errorf("handler calls: got %d, want %d", got, tc.handled)
			}
			// Streams carry the token too.
			ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "hi", Count: 1})
			for err == nil {
				_, err = ss.Recv()
			}
			if errors.Is(err, io.EOF) {
				err = nil
			}
			if code := status.Code(err); code != tc.want {
				t.Errorf("ServerStream: got %v, want %v", err, tc.want)
			}
		})
	}
	// Over plaintext, New refuses the token unless told.
	if _, err := client.New("passthrough:///x", grpckit.WithInsecure(), client.WithPerRPCToken(auth.StaticToken("t"))); err == nil {
		t.Error("WithPerRPCToken over WithInsecure: got nil error, want one")
	}
	if _, err := client.New("passthrough:///x", grpckit.WithInsecure(), client.WithPerRPCToken(nil)); err == nil {
		t.Error("WithPerRPCToken(nil): got nil error, want one")
	}
}
