package server_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/server"
)

func ExampleWithAuth() {
	// The issuer's key; in production, auth.JWKSURL(the issuer's jwks_uri).
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	verifier, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{"k1": pub}),
		"https://issuer.example", "orders")
	if err != nil {
		panic(err)
	}
	defer verifier.Close()

	srv, err := server.New(grpckit.WithInsecure(), server.WithAuth(
		auth.WithVerifier(verifier),
		auth.WithRules(
			auth.Rule{Method: "/shop.Orders/Get", Scopes: []string{"orders.read"}},
			auth.Rule{Method: "/shop.Orders/*", Roles: []string{"admin"}},
		),
	))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	fmt.Println("health stays public; /shop.Orders/Get needs orders.read; everything else is denied")
	// Output:
	// health stays public; /shop.Orders/Get needs orders.read; everything else is denied
}
