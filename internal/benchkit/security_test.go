package benchkit_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/benchkit"
	"github.com/grpckit/grpckit/server"
)

// BenchmarkSecurity measures bearer-token authentication against bare
// grpc-go: a server with WithAuth and an ES256 JWT verifier (StaticKeys,
// so the key is cached; the token cache warm after the warm-up calls, and
// off in the last row, where every call checks the signature) and a client
// sending the token with WithPerRPCToken over plain TCP on loopback
// (WithInsecureTransport), 32-byte payload, 1 call in flight. The rows
// with auth are also compared with grpckit without it ("off"): that
// difference is the cost of authentication, client and server together.
//
// Validation (server.WithValidation: the buf.validate rule on the echo
// request's message) is measured alone and with auth.
//
//	go test -run '^$' -bench Security -benchtime 1x ./internal/benchkit
func BenchmarkSecurity(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	const iss, aud = "https://issuer.test", "grpckit-bench"
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": "bench", "iss": iss, "aud": aud, "scope": "echo.read echo.write",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
	})
	tok.Header["kid"] = "k1"
	token, err := tok.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	verifier := func(opts ...auth.JWTOption) *auth.JWT {
		v, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{"k1": key.Public()}), iss, aud, opts...)
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	cached, uncached := verifier(), verifier(auth.WithCache(0))
	offS := []server.Option{grpckit.WithInsecure(), grpckit.WithAccessLog(false), grpckit.WithMetrics(nil)}
	offC := []client.Option{grpckit.WithAccessLog(false), grpckit.WithMetrics(nil), client.WithDefaultTimeout(0)}
	withToken := append(append([]client.Option{}, offC...), client.WithPerRPCToken(auth.StaticToken(token), auth.WithInsecureTransport()))
	// The rows with a token compare with bare grpc-go sending the same
	// header, the rows without with bare grpc-go.
	const withHeader = "bare grpc-go + bearer header"
	cfgs := []benchkit.Config{
		{Name: "bare grpc-go", Bare: true},
		// What grpc-go itself spends to carry the header, checked by no one.
		{Name: withHeader, Bare: true, BareDial: []grpc.DialOption{grpc.WithPerRPCCredentials(bareBearer("Bearer " + token))}},
		{Name: "off", Server: offS, Client: offC},
		{Name: "off + auth (JWT, token cached)", Ref: withHeader,
			Server: append(append([]server.Option{}, offS...), server.WithAuth(auth.WithVerifier(cached))),
			Client: withToken},
		{Name: "off + validation",
			Server: append(append([]server.Option{}, offS...), server.WithValidation()),
			Client: offC},
		{Name: "off + auth (cached) + validation", Ref: withHeader,
			Server: append(append([]server.Option{}, offS...), server.WithAuth(auth.WithVerifier(cached)), server.WithValidation()),
			Client: withToken},
		{Name: "off + auth (JWT, no token cache)", Ref: withHeader,
			Server: append(append([]server.Option{}, offS...), server.WithAuth(auth.WithVerifier(uncached))),
			Client: withToken},
	}
	for range b.N {
		res := benchkit.Run(b, cfgs, 100, 500, 1, false)
		benchkit.Report(b, fmt.Sprintf("unary-1, ES256 token of %d bytes", len(token)), res)
		// testing keeps 10 lines of a benchmark's log: the costs go to
		// stdout.
		off := res[2]
		hdr := res[1].CPU - res[0].CPU
		fmt.Printf("bare grpc-go + bearer header: the header costs grpc-go %v CPU per call, %+.1f allocs\n", hdr.Round(10*time.Nanosecond), res[1].Allocs-res[0].Allocs)
		for _, r := range res[3:] {
			d := r.CPU - off.CPU
			fmt.Printf("%s: %v CPU per call more than off (%.1f%% of the call), %+.1f allocs\n", r.Name, d.Round(10*time.Nanosecond), 100*float64(d)/float64(r.CPU), r.Allocs-off.Allocs)
		}
	}
}

// bareBearer is the least PerRPCCredentials that sends a header.
type bareBearer string

func (b bareBearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(b)}, nil
}

func (bareBearer) RequireTransportSecurity() bool { return false }
