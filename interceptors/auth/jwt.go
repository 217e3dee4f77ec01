package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of the [JWT] verifier.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultRefreshInterval is how often a JWKS URL is fetched again.
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultMinRefreshInterval is the least time between two fetches of
	// a JWKS URL that tokens with unknown key ids ask for.
	DefaultMinRefreshInterval = 30 * time.Second
	// DefaultFetchTimeout bounds one fetch of a JWKS URL.
	DefaultFetchTimeout = 10 * time.Second
	// maxToken bounds the length of a token that is parsed at all.
	maxToken = 16 << 10
)

// DefaultAlgorithms are the signing algorithms a [JWT] verifier accepts
// unless [WithAlgorithms] says otherwise. All are asymmetric.
func DefaultAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
}

// Errors of token verification (logged, never sent to the caller).
var (
	// ErrUnknownKey: the token's kid names no key of the set.
	ErrUnknownKey = errors.New("auth: unknown signing key")
	// ErrClosed: the verifier was closed.
	ErrClosed = errors.New("auth: verifier closed")
)

// Keys is where a [JWT] verifier finds its keys: [StaticKeys], [JWKSFile]
// or [JWKSURL].
type Keys struct {
	static map[string]crypto.PublicKey
	file   string
	url    string
}

// StaticKeys is a fixed key set, kid → public key (*rsa.PublicKey,
// *ecdsa.PublicKey or ed25519.PublicKey). A token without a kid is
// verified with the key under "" if there is one, or with the only key of
// a set of one.
func StaticKeys(keys map[string]crypto.PublicKey) Keys { return Keys{static: keys} }

// JWKSFile is the JWK Set in a file (RFC 7517), read once by [NewJWT].
func JWKSFile(path string) Keys { return Keys{file: path} }

// JWKSURL is the JWK Set served at url (an issuer's jwks_uri), fetched in
// the background every refresh interval and when a token names an unknown
// kid (at most once per minimum refresh interval). The last good set is
// kept when a fetch fails. Use https.
func JWKSURL(url string) Keys { return Keys{url: url} }

// JWTOption configures [NewJWT].
type JWTOption func(*jwtConfig)

type jwtConfig struct {
	algs       []string
	leeway     time.Duration
	refresh    time.Duration
	minRefresh time.Duration
	client     *http.Client
	logger     *slog.Logger
	timeFunc   func() time.Time
	cacheSize  int
	errs       []error
}

// WithAlgorithms sets the signing algorithms accepted (JWA names: RS256,
// PS256, ES256, ES384, EdDSA, ...). "none" and the HMAC algorithms are
// refused. Default: [DefaultAlgorithms].
func WithAlgorithms(algs ...string) JWTOption {
	return func(c *jwtConfig) {
		if len(algs) == 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: WithAlgorithms(): no algorithm", ErrInvalid))
			return
		}
		for _, a := range algs {
			m := jwt.GetSigningMethod(a)
			switch m.(type) {
			case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS, *jwt.SigningMethodECDSA, *jwt.SigningMethodEd25519:
			default:
				c.errs = append(c.errs, fmt.Errorf("%w: WithAlgorithms: %q is not an asymmetric signing algorithm", ErrInvalid, a))
				return
			}
		}
		c.algs = slices.Clone(algs)
	}
}

// WithLeeway sets the clock skew allowed when checking exp, nbf and iat.
// Default: [DefaultLeeway].
func WithLeeway(d time.Duration) JWTOption {
	return func(c *jwtConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: WithLeeway(%v): want >= 0", ErrInvalid, d))
			return
		}
		c.leeway = d
	}
}

// WithRefresh sets, for [JWKSURL], how often the set is fetched
// (interval), and the least time between two fetches asked for by tokens
// with unknown key ids (min; 0 fetches for every such token, for tests
// only). Default: [DefaultRefreshInterval], [DefaultMinRefreshInterval].
func WithRefresh(interval, min time.Duration) JWTOption {
	return func(c *jwtConfig) {
		if interval <= 0 || min < 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: WithRefresh(%v, %v): want interval > 0 and min >= 0", ErrInvalid, interval, min))
			return
		}
		c.refresh, c.minRefresh = interval, min
	}
}

// WithHTTPClient sets the client that fetches a [JWKSURL]; nil means the
// default. Default: an http.Client with a [DefaultFetchTimeout] timeout.
func WithHTTPClient(hc *http.Client) JWTOption {
	return func(c *jwtConfig) { c.client = hc }
}

// WithFetchLogger sets the logger of failed JWKS fetches. Default:
// slog.Default().
func WithFetchLogger(l *slog.Logger) JWTOption {
	return func(c *jwtConfig) { c.logger = l }
}

// WithCache sets how many verified tokens the verifier keeps (0: none).
// A token found in the cache is not verified again until it expires (exp
// plus the leeway, as without the cache) or the key set changes (a JWKS
// refresh that removes or replaces a key drops every cached token), which
// takes the cost of a call from tens of microseconds (the signature) to
// well under one. Tokens longer than 4 KiB are not cached. A full cache
// evicts, of a sample of its entries, the expired ones or else the one
// that expires first. Default: [DefaultCacheSize].
func WithCache(size int) JWTOption {
	return func(c *jwtConfig) {
		if size < 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: WithCache(%d): want >= 0", ErrInvalid, size))
			return
		}
		c.cacheSize = size
	}
}

// withTimeFunc sets the clock of exp/nbf checks, for tests.
func withTimeFunc(f func() time.Time) JWTOption {
	return func(c *jwtConfig) { c.timeFunc = f }
}

// JWT verifies JSON Web Tokens signed with asymmetric keys: the signature
// with a key of its [Keys] (by kid), the algorithm against an allow-list,
// exp (required) and nbf with a leeway, the issuer and the audience. It is
// a [Verifier]. A JWT on a [JWKSURL] owns a goroutine: Close it.
//
// Verified tokens are cached ([WithCache]): the [Identity] of a cached
// token is shared by the calls that present it, and its Claims, Audience,
// Scopes and Roles must not be modified.
type JWT struct {
	parser *jwt.Parser
	static keySet
	remote *remote
	cache  *tokenCache // nil: off
	leeway time.Duration
	now    func() time.Time
}

// NewJWT returns a verifier of tokens issued by issuer (the "iss" claim)
// for audience (one of the "aud" claim's values), with keys from keys.
// Both are required: a token for another service must not pass.
func NewJWT(keys Keys, issuer, audience string, opts ...JWTOption) (*JWT, error) {
	c := &jwtConfig{
		algs:       DefaultAlgorithms(),
		leeway:     DefaultLeeway,
		refresh:    DefaultRefreshInterval,
		minRefresh: DefaultMinRefreshInterval,
		logger:     slog.Default(),
		cacheSize:  DefaultCacheSize,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if issuer == "" || audience == "" {
		c.errs = append(c.errs, fmt.Errorf("%w: NewJWT: issuer and audience are required", ErrInvalid))
	}
	if c.logger == nil {
		c.errs = append(c.errs, fmt.Errorf("%w: WithFetchLogger(nil)", ErrInvalid))
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(c.algs),
		jwt.WithLeeway(c.leeway),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if c.timeFunc != nil {
		popts = append(popts, jwt.WithTimeFunc(c.timeFunc))
	}
	v := &JWT{parser: jwt.NewParser(popts...), leeway: c.leeway, now: c.timeFunc}
	if v.now == nil {
		v.now = time.Now
	}
	if c.cacheSize > 0 {
		v.cache = newTokenCache(c.cacheSize)
	}
	n := 0
	for _, set := range []bool{keys.static != nil, keys.file != "", keys.url != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("%w: NewJWT: give one of StaticKeys, JWKSFile, JWKSURL", ErrInvalid)
	}
	switch {
	case keys.static != nil:
		set := keySet{}
		for kid, k := range keys.static {
			switch k.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				return nil, fmt.Errorf("%w: StaticKeys: kid %q: %T is not an RSA, ECDSA or Ed25519 public key", ErrInvalid, kid, k)
			}
			set[kid] = publicKey{key: k}
		}
		if len(set) == 0 {
			return nil, fmt.Errorf("%w: StaticKeys: no keys", ErrInvalid)
		}
		v.static = set
	case keys.file != "":
		data, err := readLimited(keys.file)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKSFile: %w", err)
		}
		set, err := parseJWKS(data)
		if err != nil {
			return nil, err
		}
		v.static = set
	default:
		hc := c.client
		if hc == nil {
			hc = &http.Client{Timeout: DefaultFetchTimeout}
		}
		v.remote = newRemote(keys.url, hc, c.refresh, c.minRefresh, c.logger)
	}
	return v, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJWKS+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKS {
		return nil, fmt.Errorf("larger than %d bytes", maxJWKS)
	}
	return data, nil
}

// Close stops the background refresh of a [JWKSURL] and waits for it to
// end. It is idempotent, and a no-op for other keys.
func (v *JWT) Close() error {
	if v.remote != nil {
		v.remote.close()
	}
	return nil
}

// Verify verifies token and returns its identity.
func (v *JWT) Verify(ctx context.Context, token string) (Identity, error) {
	id, err := v.verify(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	return *id, nil
}

// verify is Verify returning the identity by reference: a cached token's
// is the cache entry's, which the server interceptors put in the context
// as it is ([FromContext] returns a copy), sparing an allocation.
func (v *JWT) verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) > maxToken {
		return nil, errors.New("auth: token too long")
	}
	// The generation is read before the key is looked up: a refresh that
	// removes the key after this makes the entry stored below stale.
	var gen uint64
	if v.remote != nil {
		gen = v.remote.gen.Load()
	}
	if v.cache != nil {
		if id, ok := v.cache.get(token, v.now(), gen); ok {
			return id, nil
		}
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	})
	if err != nil {
		return nil, err
	}
	id := identityOf(claims)
	if v.cache != nil {
		// Valid while now is before exp + leeway: the parser's own test.
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
			v.cache.put(token, &id, exp.Time.Add(v.leeway), v.now(), gen)
		}
	}
	return &id, nil
}

// key finds the key of a token whose algorithm the parser already checked
// against the allow-list.
func (v *JWT) key(ctx context.Context, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	var (
		k  publicKey
		ok bool
	)
	if v.remote != nil {
		var err error
		if k, err = v.remote.lookup(ctx, kid); err != nil {
			return nil, err
		}
	} else if k, ok = lookup(v.static, kid); !ok {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	if k.alg != "" && k.alg != t.Method.Alg() {
		return nil, fmt.Errorf("auth: token algorithm %s, key %q is for %s", t.Method.Alg(), kid, k.alg)
	}
	return k.key, nil
}

func lookup(set keySet, kid string) (publicKey, bool) {
	if k, ok := set[kid]; ok {
		return k, true
	}
	if kid == "" && len(set) == 1 {
		for _, k := range set {
			return k, true
		}
	}
	return publicKey{}, false
}

func identityOf(c jwt.MapClaims) Identity {
	id := Identity{Claims: c}
	id.Subject, _ = c.GetSubject()
	id.Issuer, _ = c.GetIssuer()
	id.Audience, _ = c.GetAudience()
	if s, ok := c["scope"].(string); ok {
		id.Scopes = strings.Fields(s)
	} else {
		id.Scopes = stringList(c["scp"])
	}
	id.Roles = stringList(c["roles"])
	return id
}

// stringList reads a claim that is a string or an array of strings.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
