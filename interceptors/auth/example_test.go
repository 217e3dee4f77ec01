package auth_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/interceptors/auth"
)

func ExampleNewJWT() {
	// The issuer's key; in production, auth.JWKSURL(issuer's jwks_uri).
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	v, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{"k1": pub}),
		"https://issuer.example", "orders")
	if err != nil {
		panic(err)
	}
	defer v.Close()

	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "https://issuer.example", "aud": "orders", "sub": "alice",
		"scope": "orders.read orders.write", "exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(priv)
	if err != nil {
		panic(err)
	}
	id, err := v.Verify(context.Background(), signed)
	fmt.Println(id.Subject, id.Scopes, err)
	// Output:
	// alice [orders.read orders.write] <nil>
}

func ExampleNew() {
	// In production, auth.JWKSURL(issuer's jwks_uri).
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	v, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{"k1": pub}),
		"https://issuer.example", "orders")
	if err != nil {
		panic(err)
	}
	defer v.Close()
	k, err := auth.New(auth.WithVerifier(v), auth.WithRules(
		auth.Rule{Method: "/shop.Orders/Get", Scopes: []string{"orders.read"}},
		auth.Rule{Method: "/shop.Orders/*", Roles: []string{"admin"}},
	))
	if err != nil {
		panic(err)
	}
	_ = grpc.NewServer(
		grpc.ChainUnaryInterceptor(auth.UnaryServerInterceptor(k)),
		grpc.ChainStreamInterceptor(auth.StreamServerInterceptor(k)),
	)
	// Rules are checked when the Checker is built.
	_, err = auth.New(auth.WithVerifier(v), auth.WithRules(auth.Rule{Method: "/shop.Orders/Get"}))
	fmt.Println(err)
	// Output:
	// auth: invalid option: rule "/shop.Orders/Get" allows nobody: name subjects, roles or scopes, or make it public
}
