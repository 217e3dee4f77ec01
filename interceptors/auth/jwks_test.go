package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/wait"
)

// Every key type of a JWKS file verifies tokens of its algorithm.
func TestJWKSFileKeyTypes(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signers := []signer{
		{kid: "rsa", method: jwt.SigningMethodRS256, key: rsaKey},
		{kid: "ps", method: jwt.SigningMethodPS256, key: rsaKey},
		newES256(t, "p256"),
		{kid: "p384", method: jwt.SigningMethodES384, key: p384},
		{kid: "ed", method: jwt.SigningMethodEdDSA, key: edKey},
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks(t, signers...), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewJWT(auth.JWKSFile(path), issuer, audience)
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	ctx := context.Background()
	for _, s := range signers {
		t.Run(s.kid, func(t *testing.T) {
			id, err := v.Verify(ctx, s.sign(t, claims("alice")))
			if err != nil || id.Subject != "alice" {
				t.Fatalf("Verify: got %q, %v, want alice", id.Subject, err)
			}
		})
	}
	// A key's "alg" binds it: the RSA key published for RS256 does not
	// verify PS256 tokens under kid "rsa".
	wrongAlg := signer{kid: "rsa", method: jwt.SigningMethodPS256, key: rsaKey}
	if _, err := v.Verify(ctx, wrongAlg.sign(t, claims("alice"))); err == nil {
		t.Error("PS256 token on a key published for RS256: got nil error, want one")
	}
	// An algorithm outside the allow-list fails even with the right key.
	es := signers[2]
	only, err := auth.NewJWT(auth.JWKSFile(path), issuer, audience, auth.WithAlgorithms("EdDSA"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := only.Verify(ctx, es.sign(t, claims("alice"))); err == nil {
		t.Error("ES256 token, EdDSA allowed only: got nil error, want one")
	}
}

func TestParseJWKS(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		doc   string
		keys  int
		fails bool
	}{
		{"empty set", `{"keys":[]}`, 0, false},
		{"not json", `{`, 0, true},
		{"no keys", `{}`, 0, true},
		{"unknown kty skipped", `{"keys":[{"kty":"oct","k":"AAAA"}]}`, 0, false},
		{"unknown curve skipped", `{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}`, 0, false},
		{"encryption key skipped", `{"keys":[{"kty":"OKP","crv":"Ed25519","use":"enc","x":"AA"}]}`, 0, false},
		{"short Ed25519", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, 0, true},
		{"bad base64", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"!!"}]}`, 0, true},
		{"EC point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"` + zeros(32) + `","y":"` + zeros(32) + `"}]}`, 0, true},
		{"small RSA", string(jwks(t, signer{kid: "s", method: jwt.SigningMethodRS256, key: small})), 0, true},
		{"duplicate kid", string(jwks(t, newES256(t, "a"), newES256(t, "a"))), 0, true},
		{"two keys", string(jwks(t, newES256(t, "a"), newES256(t, "b"))), 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := auth.ParseJWKS([]byte(tc.doc))
			if (err != nil) != tc.fails {
				t.Fatalf("error: got %v, want failure %v", err, tc.fails)
			}
			if n != tc.keys {
				t.Errorf("keys: got %d, want %d", n, tc.keys)
			}
		})
	}
}

func zeros(n int) string {
	b := make([]byte, n)
	return jwtSegmentBytes(b)
}

// jwksServer serves a JWKS that the test can replace, on 127.0.0.1, and
// counts the fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     []byte
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc = doc
}

func remoteVerifier(t *testing.T, url string, min time.Duration) *auth.JWT {
	t.Helper()
	v, err := auth.NewJWT(auth.JWKSURL(url), issuer, audience,
		auth.WithRefresh(time.Hour, min), auth.WithFetchLogger(discard()))
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// Keys rotate: a token with the new kid passes after the refresh it asks
// for, and the retired key no longer verifies.
func TestJWKSRotation(t *testing.T) {
	oldKey, newKey := newES256(t, "2026-01"), newES256(t, "2026-02")
	srv := newJWKSServer(t, jwks(t, oldKey))
	v := remoteVerifier(t, srv.URL, 0)
	ctx := grpckittest.Context(t, 10*time.Second)
	if id, err := v.Verify(ctx, oldKey.sign(t, claims("alice"))); err != nil || id.Subject != "alice" {
		t.Fatalf("old key before rotation: got %q, %v, want alice", id.Subject, err)
	}
	if _, err := v.Verify(ctx, newKey.sign(t, claims("alice"))); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("new key before rotation: got %v, want ErrUnknownKey", err)
	}
	srv.set(jwks(t, newKey))
	if id, err := v.Verify(ctx, newKey.sign(t, claims("bob"))); err != nil || id.Subject != "bob" {
		t.Fatalf("new key after rotation: got %q, %v, want bob", id.Subject, err)
	}
	if _, err := v.Verify(ctx, oldKey.sign(t, claims("alice"))); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("retired key: got %v, want ErrUnknownKey", err)
	}
	// Through a server: the rotated key authenticates a call.
	k := newChecker(t, auth.WithVerifier(v), auth.WithLogger(discard()))
	addr := serve(t, k)
	if code, _, sub := echo(ctx, dialToken(t, addr, newKey.sign(t, claims("carol")))); code != 0 || sub != "carol" {
		t.Errorf("Echo with the rotated key: got %v %q, want OK carol", code, sub)
	}
}

// Unknown kids ask for a fetch at most once per minimum interval.
func TestJWKSRefreshRateLimited(t *testing.T) {
	oldKey, newKey := newES256(t, "a"), newES256(t, "b")
	srv := newJWKSServer(t, jwks(t, oldKey))
	v := remoteVerifier(t, srv.URL, time.Hour)
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := v.Verify(ctx, oldKey.sign(t, claims("alice"))); err != nil {
		t.Fatalf("first key: %v", err)
	}
	srv.set(jwks(t, newKey))
	for range 20 {
		if _, err := v.Verify(ctx, newKey.sign(t, claims("alice"))); !errors.Is(err, auth.ErrUnknownKey) {
			t.Fatalf("unknown kid within the minimum interval: got %v, want ErrUnknownKey", err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("fetches: got %d, want 1", got)
	}
}

// A failing JWKS endpoint keeps the last good set; Close stops the
// goroutine (goleak checks) and is idempotent.
func TestJWKSFetchFailureKeepsKeys(t *testing.T) {
	key, other := newES256(t, "a"), newES256(t, "b")
	srv := newJWKSServer(t, jwks(t, key))
	v := remoteVerifier(t, srv.URL, 0)
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := v.Verify(ctx, key.sign(t, claims("alice"))); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	srv.set([]byte(`{"keys":`)) // broken
	if _, err := v.Verify(ctx, other.sign(t, claims("alice"))); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("unknown kid with a broken JWKS: got %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, key.sign(t, claims("alice"))); err != nil {
		t.Fatalf("known key after a failed fetch: got %v, want nil", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, other.sign(t, claims("alice"))); err == nil {
		t.Error("unknown kid after Close: got nil error, want one")
	}
}

// Concurrent calls with a new kid share the fetches they ask for, and all
// pass once it is in.
func TestJWKSConcurrentUnknownKid(t *testing.T) {
	oldKey, newKey := newES256(t, "a"), newES256(t, "b")
	srv := newJWKSServer(t, jwks(t, oldKey))
	v := remoteVerifier(t, srv.URL, time.Hour)
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := v.Verify(ctx, oldKey.sign(t, claims("alice"))); err != nil {
		t.Fatalf("first key: %v", err)
	}
	// Only a fetch an hour later could see the new key: a new verifier
	// fetches at its start, and its callers wait for that fetch.
	srv.set(jwks(t, oldKey, newKey))
	v2 := remoteVerifier(t, srv.URL, time.Hour)
	tok := newKey.sign(t, claims("bob"))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v2.Verify(ctx, tok); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Verify: %v", err)
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("fetches: got %d, want 2 (one per verifier)", got)
	}
}

// The set is fetched again every refresh interval without being asked.
func TestJWKSPeriodicRefresh(t *testing.T) {
	srv := newJWKSServer(t, jwks(t, newES256(t, "a")))
	v, err := auth.NewJWT(auth.JWKSURL(srv.URL), issuer, audience,
		auth.WithRefresh(time.Millisecond, time.Hour), auth.WithFetchLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	wait.For(t, 10*time.Second, "three fetches", func() bool { return srv.fetches.Load() >= 3 })
}
