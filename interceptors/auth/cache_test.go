package auth_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
)

// clock is a settable time for auth.WithTimeFunc.
type clock struct{ ns atomic.Int64 }

func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }

func cachedVerifier(t testing.TB, s signer, opts ...auth.JWTOption) *auth.JWT {
	t.Helper()
	v, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{s.kid: s.key.Public()}), issuer, audience, opts...)
	if err != nil {
		t.Fatalf("NewJWT: %v", err)
	}
	return v
}

// A cached token gives the identity the first verification gave, without
// allocating.
func TestCacheHit(t *testing.T) {
	s := newES256(t, "k1")
	v := cachedVerifier(t, s)
	c := claims("alice")
	c["scope"] = "read write"
	c["roles"] = []string{"admin"}
	tok := s.sign(t, c)
	ctx := context.Background()
	first, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := auth.CacheLen(v); n != 1 {
		t.Fatalf("cache entries after one token: %d, want 1", n)
	}
	second, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, second) || second.Subject != "alice" || len(second.Scopes) != 2 || len(second.Roles) != 1 {
		t.Errorf("cached identity %+v, want %+v", second, first)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = v.Verify(ctx, tok) }); a > 0 {
		t.Errorf("allocations per cache hit: %v, want 0", a)
	}
	// A failed verification is not cached, and a token differing from a
	// cached one by one byte is verified (and fails).
	bad := tok[:len(tok)-2] + "AA"
	if bad == tok {
		bad = tok[:len(tok)-2] + "BB"
	}
	for range 2 {
		if _, err := v.Verify(ctx, bad); err == nil {
			t.Fatal("tampered token passed")
		}
	}
	if n := auth.CacheLen(v); n != 1 {
		t.Errorf("cache entries after failures: %d, want 1", n)
	}
}

func TestCacheOption(t *testing.T) {
	s := newES256(t, "k1")
	v := cachedVerifier(t, s, auth.WithCache(0))
	tok := s.sign(t, claims("alice"))
	for range 2 {
		if id, err := v.Verify(context.Background(), tok); err != nil || id.Subject != "alice" {
			t.Fatalf("without cache: %q, %v", id.Subject, err)
		}
	}
	if n := auth.CacheLen(v); n != 0 {
		t.Errorf("WithCache(0) holds %d entries", n)
	}
	if _, err := auth.NewJWT(auth.StaticKeys(map[string]crypto.PublicKey{"k1": s.key.Public()}), issuer, audience, auth.WithCache(-1)); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("WithCache(-1): %v, want ErrInvalid", err)
	}
}

// A cached token fails once it expires, at the same instant and with the
// same error as with no cache, the leeway counted the same way.
func TestCacheExpiry(t *testing.T) {
	s := newES256(t, "k1")
	start := time.Now()
	exp := time.Unix(start.Add(10*time.Second).Unix(), 0)
	for _, leeway := range []time.Duration{0, auth.DefaultLeeway} {
		t.Run(fmt.Sprint(leeway), func(t *testing.T) {
			clk := newClock(start)
			cached := cachedVerifier(t, s, auth.WithTimeFunc(clk.now), auth.WithLeeway(leeway))
			plain := cachedVerifier(t, s, auth.WithTimeFunc(clk.now), auth.WithLeeway(leeway), auth.WithCache(0))
			c := claims("alice")
			c["exp"] = exp.Unix()
			c["iat"] = start.Add(-time.Minute).Unix()
			tok := s.sign(t, c)
			ctx := context.Background()
			if _, err := cached.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				at time.Time
				ok bool
			}{
				{exp.Add(leeway - time.Nanosecond), true},
				{exp.Add(leeway), false},
				{exp.Add(leeway + time.Hour), false},
			} {
				clk.set(tc.at)
				_, errC := cached.Verify(ctx, tok)
				_, errP := plain.Verify(ctx, tok)
				if (errC == nil) != tc.ok || (errP == nil) != tc.ok {
					t.Errorf("at exp%+v: cached %v, uncached %v; want ok=%v", tc.at.Sub(exp), errC, errP, tc.ok)
				}
				if !tc.ok && (!errors.Is(errC, jwt.ErrTokenExpired) || !errors.Is(errP, jwt.ErrTokenExpired)) {
					t.Errorf("at exp%+v: cached %v, uncached %v; want ErrTokenExpired", tc.at.Sub(exp), errC, errP)
				}
			}
			if n := auth.CacheLen(cached); n != 1 {
				t.Errorf("cache entries: %d, want 1", n)
			}
		})
	}
}

// A JWKS refresh that removes a key invalidates the cached tokens it
// signed; tokens of the keys kept still pass.
func TestCacheKeyRotation(t *testing.T) {
	a, b, c := newES256(t, "a"), newES256(t, "b"), newES256(t, "c")
	srv := newJWKSServer(t, jwks(t, a, b))
	v := remoteVerifier(t, srv.URL, 0)
	ctx := grpckittest.Context(t, 10*time.Second)
	tokA, tokB := a.sign(t, claims("alice")), b.sign(t, claims("bob"))
	for range 2 {
		if _, err := v.Verify(ctx, tokA); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(ctx, tokB); err != nil {
			t.Fatal(err)
		}
	}
	if n := auth.CacheLen(v); n != 2 {
		t.Fatalf("cache entries: %d, want 2", n)
	}
	// The set now holds b and c: the token with kid c asks for a refresh.
	srv.set(jwks(t, b, c))
	if id, err := v.Verify(ctx, c.sign(t, claims("carol"))); err != nil || id.Subject != "carol" {
		t.Fatalf("new key: %q, %v", id.Subject, err)
	}
	if _, err := v.Verify(ctx, tokA); !errors.Is(err, auth.ErrUnknownKey) {
		t.Errorf("cached token of the removed key: %v, want ErrUnknownKey", err)
	}
	if id, err := v.Verify(ctx, tokB); err != nil || id.Subject != "bob" {
		t.Errorf("cached token of the kept key: %q, %v", id.Subject, err)
	}
	// A key replaced under the same kid invalidates too.
	b2 := newES256(t, "b")
	srv.set(jwks(t, b2, c))
	if _, err := v.Verify(ctx, newES256(t, "d").sign(t, claims("dave"))); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	if _, err := v.Verify(ctx, tokB); err == nil {
		t.Error("cached token of a replaced key passed")
	}
}

// The cache never holds more than its size, however many tokens pass.
func TestCacheBound(t *testing.T) {
	s := newES256(t, "k1")
	const size = 50
	v := cachedVerifier(t, s, auth.WithCache(size))
	ctx := context.Background()
	toks := make([]string, 500)
	for i := range toks {
		toks[i] = s.sign(t, claims(fmt.Sprint("user", i)))
	}
	for i, tok := range toks {
		if id, err := v.Verify(ctx, tok); err != nil || id.Subject != fmt.Sprint("user", i) {
			t.Fatalf("token %d: %q, %v", i, id.Subject, err)
		}
		if n := auth.CacheLen(v); n > size {
			t.Fatalf("cache entries after %d tokens: %d, want <= %d", i+1, n, size)
		}
	}
	for i, tok := range toks {
		if id, err := v.Verify(ctx, tok); err != nil || id.Subject != fmt.Sprint("user", i) {
			t.Fatalf("token %d again: %q, %v", i, id.Subject, err)
		}
	}
	if n := auth.CacheLen(v); n > size {
		t.Errorf("cache entries: %d, want <= %d", n, size)
	}
}

// Concurrent verifications of more tokens than the cache holds (run with
// -race).
func TestCacheConcurrent(t *testing.T) {
	s := newES256(t, "k1")
	v := cachedVerifier(t, s, auth.WithCache(8))
	toks := make([]string, 16)
	for i := range toks {
		toks[i] = s.sign(t, claims(fmt.Sprint("user", i)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				k := (g*7 + i) % len(toks)
				if id, err := v.Verify(context.Background(), toks[k]); err != nil || id.Subject != fmt.Sprint("user", k) {
					t.Errorf("token %d: %q, %v", k, id.Subject, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := auth.CacheLen(v); n > 8 {
		t.Errorf("cache entries: %d, want <= 8", n)
	}
}
