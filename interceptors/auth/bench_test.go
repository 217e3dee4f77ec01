package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify measures the verification of a token with a cached key
// (StaticKeys; a JWKS URL's keys are held the same way): ES256, the most
// common, and EdDSA.
func BenchmarkVerify(b *testing.B) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []signer{newES256(b, "k1"), {kid: "k1", method: jwt.SigningMethodEdDSA, key: ed}} {
		b.Run(s.method.Alg(), func(b *testing.B) {
			v := staticVerifier(b, s)
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
