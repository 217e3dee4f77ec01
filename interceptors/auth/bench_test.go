package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/interceptors/auth"
)

// BenchmarkVerify measures the verification of a token with a cached key
// (StaticKeys; a JWKS URL's keys are held the same way): ES256, the most
// common, and EdDSA, each with the token cache off (the signature checked
// every time) and on (every call after the first a hit).
//
//	go test -run '^$' -bench Verify ./interceptors/auth
func BenchmarkVerify(b *testing.B) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []signer{newES256(b, "k1"), {kid: "k1", method: jwt.SigningMethodEdDSA, key: ed}} {
		for _, cache := range []int{0, auth.DefaultCacheSize} {
			name := s.method.Alg() + "/uncached"
			if cache > 0 {
				name = s.method.Alg() + "/cached"
			}
			b.Run(name, func(b *testing.B) {
				v := cachedVerifier(b, s, auth.WithCache(cache))
				tok := s.sign(b, claims("alice"))
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkUnaryServerInterceptor measures the server side of a call with
// a cached token: metadata lookup, cache hit, identity in the context.
//
//	go test -run '^$' -bench UnaryServerInterceptor ./interceptors/auth
func BenchmarkUnaryServerInterceptor(b *testing.B) {
	s := newES256(b, "k1")
	v := staticVerifier(b, s)
	k := newChecker(b, auth.WithVerifier(v), auth.WithLogger(discard()))
	ic := auth.UnaryServerInterceptor(k)
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+s.sign(b, claims("alice"))))
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ic(ctx, nil, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}
