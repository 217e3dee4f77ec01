package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/grpckit/grpckit/interceptors/auth"
)

// FuzzVerify feeds arbitrary tokens to a JWT verifier: no panic, and no
// token passes unless it is the one validly signed token of the corpus.
func FuzzVerify(f *testing.F) {
	s := newES256(f, "k1")
	v := staticVerifier(f, s)
	valid := s.sign(f, claims("alice"))
	for _, seed := range []string{valid, "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 64)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := v.Verify(context.Background(), tok)
		if err == nil && (tok != valid || id.Subject != "alice") {
			t.Fatalf("token %q verified as %q", tok, id.Subject)
		}
	})
}

// FuzzParseJWKS feeds arbitrary documents to the JWKS parser.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add(jwks(f, newES256(f, "a")))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		n, err := auth.ParseJWKS(doc)
		if err != nil && n != 0 {
			t.Fatalf("error %v with %d keys", err, n)
		}
	})
}

// FuzzRules checks the rule matcher: a rule that New accepts decides the
// method it names exactly, and a method never matches another service's
// rule.
func FuzzRules(f *testing.F) {
	for _, s := range [][2]string{
		{"/pkg.Svc/Method", "/pkg.Svc/Method"},
		{"/pkg.Svc/*", "/pkg.Svc/Other"},
		{"*", "/x.Y/Z"},
		{"/a/*", "/a/b/c"},
		{"/grpc.health.v1.Health/*", "/grpc.health.v1.Health/Check"},
		{"/pkg.Svc/", "/pkg.Svc/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, method string) {
		rules := []auth.Rule{{Method: pattern, Subjects: []string{"*"}}}
		if _, err := auth.New(auth.WithVerifier(auth.VerifierFunc(nil)), auth.WithRules(rules...)); err != nil {
			return
		}
		got, err := auth.MatchRule(rules, method)
		if err != nil {
			t.Fatalf("MatchRule: %v after New accepted %q", err, pattern)
		}
		if method == pattern && got != pattern {
			t.Fatalf("method %q: decided by %q, want its own rule", method, got)
		}
		if got == pattern && pattern != "*" && !strings.HasSuffix(pattern, "/*") && method != pattern {
			t.Fatalf("method %q decided by the rule of %q", method, pattern)
		}
		if got == pattern && strings.HasSuffix(pattern, "/*") {
			svc := strings.TrimSuffix(pattern, "/*")
			if !strings.HasPrefix(method, svc+"/") || strings.Count(method[len(svc)+1:], "/") != 0 {
				t.Fatalf("method %q decided by rule %q of another service", method, pattern)
			}
		}
	})
}
