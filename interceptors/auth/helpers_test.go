package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/logbuf"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	issuer   = "https://issuer.test"
	audience = "grpckit-test"
)

// signer is a signing key with its kid and algorithm.
type signer struct {
	kid    string
	method jwt.SigningMethod
	key    crypto.Signer
}

func newES256(t testing.TB, kid string) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, method: jwt.SigningMethodES256, key: k}
}

// claims returns valid claims for subject, to be changed by each case.
func claims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": sub,
		"iss": issuer,
		"aud": audience,
		"iat": now.Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

func (s signer) sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, c)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	str, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return str
}

// jwkOf returns the JWK of s's public key.
func jwkOf(t testing.TB, s signer) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]string{"kid": s.kid, "use": "sig", "alg": s.method.Alg()}
	switch k := s.key.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(k.N.Bytes()), b64(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m["kty"], m["crv"] = "EC", k.Curve.Params().Name
		m["x"], m["y"] = b64(raw[1:1+size]), b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(k)
	default:
		t.Fatalf("key type %T", k)
	}
	return m
}

func jwks(t testing.TB, ss ...signer) []byte {
	t.Helper()
	keys := make([]map[string]string, len(ss))
	for i, s := range ss {
		keys[i] = jwkOf(t, s)
	}
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func staticVerifier(t testing.TB, ss ...signer) *auth.JWT {
	t.Helper()
	keys := map[string]crypto.PublicKey{}
	for _, s := range ss {
		keys[s.kid] = s.key.Public()
	}
	v, err := auth.NewJWT(auth.StaticKeys(keys), issuer, audience)
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	return v
}

func newChecker(t testing.TB, opts ...auth.Option) *auth.Checker {
	t.Helper()
	k, err := auth.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return k
}

// logBuffer is a concurrency-safe JSON log.
type logBuffer struct{ logbuf.Buffer }

// lines returns the logged records.
func (b *logBuffer) lines(t *testing.T) []map[string]any { return b.JSONLines(t) }

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(&b.Buffer, nil)) }

// idBackend is the echo backend answering with the caller's subject (""
// when the handler sees no identity), on Echo and on BidiStream.
type idBackend struct {
	grpckittest.Backend
}

func subjectOf(ctx context.Context) string {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return "<none>"
	}
	return id.Subject
}

func (b *idBackend) Echo(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	return &echov1.EchoResponse{Message: subjectOf(ctx)}, nil
}

func (b *idBackend) BidiStream(stream echov1.EchoService_BidiStreamServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	return stream.Send(&echov1.BidiStreamResponse{Message: subjectOf(stream.Context())})
}

// serve starts the id backend and a health service on a bare grpc-go
// server guarded by k, and returns a bare plaintext client of it.
func serve(t *testing.T, k *auth.Checker, opts ...grpc.ServerOption) string {
	t.Helper()
	b := &idBackend{}
	opts = append(opts,
		grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(k)),
		grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(k)))
	return baregrpc.Serve(t, func(r grpc.ServiceRegistrar) {
		echov1.RegisterEchoServiceServer(r, b)
		healthpb.RegisterHealthServer(r, health.NewServer())
	}, opts...)
}

// dialToken returns a client of addr sending token over plaintext.
func dialToken(t *testing.T, addr, token string) echov1.EchoServiceClient {
	t.Helper()
	cc := baregrpc.Dial(t, addr,
		grpc.WithChainUnaryInterceptor(auth.UnaryClientInterceptor(auth.StaticToken(token), auth.WithInsecureTransport())),
		grpc.WithChainStreamInterceptor(auth.StreamClientInterceptor(auth.StaticToken(token), auth.WithInsecureTransport())))
	return echov1.NewEchoServiceClient(cc)
}

// echo calls Echo and returns the code and the subject the handler saw.
func echo(ctx context.Context, c echov1.EchoServiceClient) (codes.Code, string, string) {
	resp, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	st := status.Convert(err)
	return st.Code(), st.Message(), resp.GetMessage()
}

// bidi opens a bidi stream, sends one message and returns the code and
// the subject of the answer.
func bidi(ctx context.Context, c echov1.EchoServiceClient) (codes.Code, string) {
	s, err := c.BidiStream(ctx)
	if err != nil {
		return status.Code(err), ""
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "hi"}); err != nil {
		_, err = s.Recv()
		return status.Code(err), ""
	}
	resp, err := s.Recv()
	if err != nil {
		return status.Code(err), ""
	}
	_ = s.CloseSend()
	return codes.OK, resp.GetMessage()
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func jwtSegmentBytes(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
