package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/baregrpc"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestAuthentication(t *testing.T) {
	good := newES256(t, "k1")
	other := newES256(t, "k1") // same kid, another key
	stranger := newES256(t, "k9")
	var logs logBuffer
	k := newChecker(t, auth.WithVerifier(staticVerifier(t, good)), auth.WithLogger(logs.logger()))
	addr := serve(t, k)
	plain := echov1.NewEchoServiceClient(baregrpc.Dial(t, addr))

	with := func(mutate func(jwt.MapClaims)) string {
		c := claims("alice")
		mutate(c)
		return good.sign(t, c)
	}
	none := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims("alice")).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	for _, tc := range []struct {
		name   string
		header string // the whole authorization value; "" sends none
		want   codes.Code
	}{
		{"valid", "Bearer " + good.sign(t, claims("alice")), codes.OK},
		{"lowercase scheme", "bearer " + good.sign(t, claims("alice")), codes.OK},
		{"missing", "", codes.Unauthenticated},
		{"no token", "Bearer", codes.Unauthenticated},
		{"empty token", "Bearer ", codes.Unauthenticated},
		{"other scheme", "Basic YWxpY2U6cHc=", codes.Unauthenticated},
		{"not a JWT", "Bearer not.a.jwt", codes.Unauthenticated},
		{"garbage", "Bearer " + strings.Repeat("x", 100), codes.Unauthenticated},
		{"expired", "Bearer " + with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), codes.Unauthenticated},
		{"no exp", "Bearer " + with(func(c jwt.MapClaims) { delete(c, "exp") }), codes.Unauthenticated},
		{"not yet valid", "Bearer " + with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), codes.Unauthenticated},
		{"issued in the future", "Bearer " + with(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Hour).Unix() }), codes.Unauthenticated},
		{"wrong audience", "Bearer " + with(func(c jwt.MapClaims) { c["aud"] = "another-service" }), codes.Unauthenticated},
		{"no audience", "Bearer " + with(func(c jwt.MapClaims) { delete(c, "aud") }), codes.Unauthenticated},
		{"wrong issuer", "Bearer " + with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), codes.Unauthenticated},
		{"alg none", "Bearer " + none, codes.Unauthenticated},
		{"wrongly signed", "Bearer " + other.sign(t, claims("alice")), codes.Unauthenticated},
		{"unknown kid", "Bearer " + stranger.sign(t, claims("alice")), codes.Unauthenticated},
		{"tampered payload", "Bearer " + tamper(good.sign(t, claims("alice"))), codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := grpckittest.Context(t, 10*time.Second)
			if tc.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.header)
			}
			code, msg, subject := echo(ctx, plain)
			if code != tc.want {
				t.Fatalf("code: got %v (%q), want %v", code, msg, tc.want)
			}
			switch tc.want {
			case codes.OK:
				if subject != "alice" {
					t.Errorf("handler saw subject %q, want alice", subject)
				}
			case codes.Unauthenticated:
				if msg != auth.MessageUnauthenticated {
					t.Errorf("message: got %q, want %q", msg, auth.MessageUnauthenticated)
				}
			}
			// The same token on a bidi stream: judged the same way.
			if code, sub := bidi(ctx, plain); code != tc.want || (tc.want == codes.OK && sub != "alice") {
				t.Errorf("BidiStream: got %v %q, want %v", code, sub, tc.want)
			}
		})
	}
	lines := logs.lines(t)
	if len(lines) == 0 {
		t.Fatal("no rejection logged")
	}
	for _, l := range lines {
		for _, key := range []string{"grpc.service", "grpc.method", "grpc.code", "auth.reason", "peer.address"} {
			if _, ok := l[key]; !ok {
				t.Errorf("log line %v: no key %s", l, key)
			}
		}
		if l["grpc.service"] != "grpckit.echo.v1.EchoService" || (l["grpc.method"] != "Echo" && l["grpc.method"] != "BidiStream") || l["grpc.code"] != "Unauthenticated" {
			t.Errorf("log line %v: got service %v method %v code %v", l, l["grpc.service"], l["grpc.method"], l["grpc.code"])
		}
	}
}

// tamper changes the subject in a signed token's payload.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = jwtSegment(`{"sub":"mallory","iss":"` + issuer + `","aud":"` + audience + `","exp":9999999999}`)
	return strings.Join(parts, ".")
}

func jwtSegment(s string) string {
	return strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(b64std(s)), "=")
}

func TestAuthorization(t *testing.T) {
	s := newES256(t, "k1")
	var logs logBuffer
	k := newChecker(t, auth.WithVerifier(staticVerifier(t, s)), auth.WithLogger(logs.logger()),
		auth.WithRules(
			auth.Rule{Method: echov1.EchoService_Echo_FullMethodName, Roles: []string{"admin"}, Subjects: []string{"bob"}},
			auth.Rule{Method: "/grpckit.echo.v1.EchoService/*", Scopes: []string{"echo.stream"}},
		))
	addr := serve(t, k)
	token := func(sub string, set func(jwt.MapClaims)) string {
		c := claims(sub)
		if set != nil {
			set(c)
		}
		return s.sign(t, c)
	}
	admin := token("alice", func(c jwt.MapClaims) { c["roles"] = []string{"admin"} })
	bob := token("bob", nil)
	streamer := token("carol", func(c jwt.MapClaims) { c["scope"] = "read echo.stream" })
	nobody := token("dave", func(c jwt.MapClaims) { c["roles"] = []string{"viewer"}; c["scope"] = "read" })

	ctx := grpckittest.Context(t, 10*time.Second)
	for _, tc := range []struct {
		name, token string
		unary       codes.Code
		stream      codes.Code
		subject     string
	}{
		{"role", admin, codes.OK, codes.PermissionDenied, "alice"},
		{"subject", bob, codes.OK, codes.PermissionDenied, "bob"},
		{"scope", streamer, codes.PermissionDenied, codes.OK, "carol"},
		{"forbidden", nobody, codes.PermissionDenied, codes.PermissionDenied, "dave"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialToken(t, addr, tc.token)
			code, msg, sub := echo(ctx, c)
			if code != tc.unary {
				t.Fatalf("Echo: got %v (%q), want %v", code, msg, tc.unary)
			}
			if code == codes.OK && sub != tc.subject {
				t.Errorf("Echo: handler saw %q, want %q", sub, tc.subject)
			}
			if code == codes.PermissionDenied && msg != auth.MessagePermissionDenied {
				t.Errorf("Echo message: got %q, want %q", msg, auth.MessagePermissionDenied)
			}
			code, sub = bidi(ctx, c)
			if code != tc.stream {
				t.Fatalf("BidiStream: got %v, want %v", code, tc.stream)
			}
			if code == codes.OK && sub != tc.subject {
				t.Errorf("BidiStream: handler saw %q, want %q", sub, tc.subject)
			}
		})
	}
	// A bad token on a stream is Unauthenticated at stream start.
	if code, _ := bidi(ctx, dialToken(t, addr, "bad")); code != codes.Unauthenticated {
		t.Errorf("BidiStream with a bad token: got %v, want Unauthenticated", code)
	}
	// Health is public by default: no token needed.
	hc := healthpb.NewHealthClient(baregrpc.Dial(t, addr))
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: got %v, want OK", err)
	}
	var denied bool
	for _, l := range logs.lines(t) {
		if l["grpc.code"] == "PermissionDenied" && l["auth.subject"] == "dave" && l["auth.reason"] != nil {
			denied = true
		}
	}
	if !denied {
		t.Error("no PermissionDenied log line with auth.subject=dave and auth.reason")
	}
}

// Default deny: once rules are set, a method no rule matches is denied;
// a rule for health closes it.
func TestDefaultDeny(t *testing.T) {
	s := newES256(t, "k1")
	k := newChecker(t, auth.WithVerifier(staticVerifier(t, s)), auth.WithLogger(discard()),
		auth.WithRules(
			auth.Rule{Method: echov1.EchoService_ClientStream_FullMethodName, Subjects: []string{"*"}},
			auth.Rule{Method: "/grpc.health.v1.Health/*", Subjects: []string{"prober"}},
		))
	addr := serve(t, k)
	ctx := grpckittest.Context(t, 10*time.Second)
	if code, _, _ := echo(ctx, dialToken(t, addr, s.sign(t, claims("alice")))); code != codes.PermissionDenied {
		t.Errorf("Echo without a rule: got %v, want PermissionDenied", code)
	}
	_, err := healthpb.NewHealthClient(baregrpc.Dial(t, addr)).Check(ctx, &healthpb.HealthCheckRequest{})
	if code := status.Code(err); code != codes.Unauthenticated {
		t.Errorf("health closed by a rule, no token: got %v, want Unauthenticated", code)
	}
}

// Without rules every authenticated caller may call every method.
func TestNoRules(t *testing.T) {
	s := newES256(t, "k1")
	addr := serve(t, newChecker(t, auth.WithVerifier(staticVerifier(t, s)), auth.WithLogger(discard())))
	ctx := grpckittest.Context(t, 10*time.Second)
	c := dialToken(t, addr, s.sign(t, claims("alice")))
	if code, _, sub := echo(ctx, c); code != codes.OK || sub != "alice" {
		t.Errorf("Echo: got %v %q, want OK alice", code, sub)
	}
	if code, sub := bidi(ctx, c); code != codes.OK || sub != "alice" {
		t.Errorf("BidiStream: got %v %q, want OK alice", code, sub)
	}
	if code, _ := bidi(ctx, echov1.NewEchoServiceClient(baregrpc.Dial(t, addr))); code != codes.Unauthenticated {
		t.Errorf("BidiStream without a token: got %v, want Unauthenticated", code)
	}
}

func TestConfigErrors(t *testing.T) {
	v := auth.VerifierFunc(func(context.Context, string) (auth.Identity, error) { return auth.Identity{}, nil })
	for _, tc := range []struct {
		name string
		opts []auth.Option
		want error
	}{
		{"nothing", nil, auth.ErrNoAuthenticator},
		{"nil verifier", []auth.Option{auth.WithVerifier(nil)}, auth.ErrInvalid},
		{"nil logger", []auth.Option{auth.WithVerifier(v), auth.WithLogger(nil)}, auth.ErrInvalid},
		{"empty method", rule(v, auth.Rule{Subjects: []string{"a"}}), auth.ErrInvalid},
		{"no slash", rule(v, auth.Rule{Method: "pkg.Svc/M", Subjects: []string{"a"}}), auth.ErrInvalid},
		{"no method", rule(v, auth.Rule{Method: "/pkg.Svc/", Subjects: []string{"a"}}), auth.ErrInvalid},
		{"three parts", rule(v, auth.Rule{Method: "/pkg/Svc/M", Subjects: []string{"a"}}), auth.ErrInvalid},
		{"star inside", rule(v, auth.Rule{Method: "/pkg.*/M", Subjects: []string{"a"}}), auth.ErrInvalid},
		{"space", rule(v, auth.Rule{Method: "/pkg.Svc/M ", Subjects: []string{"a"}}), auth.ErrInvalid},
		{"allows nobody", rule(v, auth.Rule{Method: "/pkg.Svc/M"}), auth.ErrInvalid},
		{"public with roles", rule(v, auth.Rule{Method: "/pkg.Svc/M", Public: true, Roles: []string{"a"}}), auth.ErrInvalid},
		{"empty role", rule(v, auth.Rule{Method: "/pkg.Svc/M", Roles: []string{""}}), auth.ErrInvalid},
		{"duplicate", rule(v, auth.Rule{Method: "*", Subjects: []string{"a"}}, auth.Rule{Method: "*", Roles: []string{"b"}}), auth.ErrInvalid},
		{"duplicate service", rule(v, auth.Rule{Method: "/a.S/*", Subjects: []string{"a"}}, auth.Rule{Method: "/a.S/*", Roles: []string{"b"}}), auth.ErrInvalid},
		{"ok", rule(v, auth.Rule{Method: "*", Subjects: []string{"a"}}, auth.Rule{Method: "/a.S/*", Public: true}, auth.Rule{Method: "/a.S/M", Roles: []string{"r"}}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.New(tc.opts...)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("New: got %v, want %v", err, tc.want)
			}
		})
	}
}

func rule(v auth.Verifier, rs ...auth.Rule) []auth.Option {
	return []auth.Option{auth.WithVerifier(v), auth.WithRules(rs...)}
}

func TestJWTConfigErrors(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.StaticKeys(map[string]crypto.PublicKey{"k": &k.PublicKey})
	for _, tc := range []struct {
		name     string
		keys     auth.Keys
		iss, aud string
		opts     []auth.JWTOption
	}{
		{"no issuer", keys, "", audience, nil},
		{"no audience", keys, issuer, "", nil},
		{"no keys", auth.Keys{}, issuer, audience, nil},
		{"empty static keys", auth.StaticKeys(map[string]crypto.PublicKey{}), issuer, audience, nil},
		{"symmetric key", auth.StaticKeys(map[string]crypto.PublicKey{"k": []byte("secret")}), issuer, audience, nil},
		{"private key", auth.StaticKeys(map[string]crypto.PublicKey{"k": k}), issuer, audience, nil},
		{"alg none", keys, issuer, audience, []auth.JWTOption{auth.WithAlgorithms("none")}},
		{"alg HS256", keys, issuer, audience, []auth.JWTOption{auth.WithAlgorithms("ES256", "HS256")}},
		{"alg unknown", keys, issuer, audience, []auth.JWTOption{auth.WithAlgorithms("XX999")}},
		{"no algs", keys, issuer, audience, []auth.JWTOption{auth.WithAlgorithms()}},
		{"negative leeway", keys, issuer, audience, []auth.JWTOption{auth.WithLeeway(-time.Second)}},
		{"zero refresh", keys, issuer, audience, []auth.JWTOption{auth.WithRefresh(0, 0)}},
		{"missing file", auth.JWKSFile(t.TempDir() + "/none.json"), issuer, audience, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := auth.NewJWT(tc.keys, tc.iss, tc.aud, tc.opts...); err == nil {
				_ = v.Close()
				t.Errorf("NewJWT: got nil error, want one")
			}
		})
	}
}

// The client refuses to send a token over plaintext unless told.
func TestClientRequiresTransportSecurity(t *testing.T) {
	b := &idBackend{}
	addr := baregrpc.Serve(t, b.Register)
	c := echov1.NewEchoServiceClient(baregrpc.Dial(t, addr,
		grpc.WithChainUnaryInterceptor(auth.UnaryClientInterceptor(auth.StaticToken("secret")))))
	ctx := grpckittest.Context(t, 10*time.Second)
	if code, msg, _ := echo(ctx, c); code != codes.Unauthenticated {
		t.Fatalf("token over plaintext: got %v (%q), want Unauthenticated", code, msg)
	}
	if got := b.Faults.Calls(); got != 0 {
		t.Errorf("handler calls: got %d, want 0", got)
	}
}

func TestCached(t *testing.T) {
	for _, tc := range []struct {
		name      string
		life      time.Duration // token lifetime; 0: no expiry
		wantCalls int
	}{
		{"long-lived", time.Hour, 1},
		{"no expiry", 0, 1},
		{"within refresh window", 30 * time.Second, 3},
		{"expired", -time.Second, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			src := auth.Cached(auth.TokenSourceFunc(func(context.Context) (string, time.Time, error) {
				calls++
				var exp time.Time
				if tc.life != 0 {
					exp = time.Now().Add(tc.life)
				}
				return "tok", exp, nil
			}), time.Minute)
			for range 3 {
				tok, _, err := src.Token(context.Background())
				if err != nil || tok != "tok" {
					t.Fatalf("Token: got %q, %v, want tok", tok, err)
				}
			}
			if calls != tc.wantCalls {
				t.Errorf("source calls: got %d, want %d", calls, tc.wantCalls)
			}
		})
	}
	// An error is not kept.
	fail := true
	src := auth.Cached(auth.TokenSourceFunc(func(context.Context) (string, time.Time, error) {
		if fail {
			fail = false
			return "", time.Time{}, errors.New("idp down")
		}
		return "tok", time.Now().Add(time.Hour), nil
	}), time.Minute)
	if _, _, err := src.Token(context.Background()); err == nil {
		t.Error("first Token: got nil error, want idp down")
	}
	if tok, _, err := src.Token(context.Background()); err != nil || tok != "tok" {
		t.Errorf("second Token: got %q, %v, want tok", tok, err)
	}
}

// A token source's failure fails the call on the client.
func TestClientTokenError(t *testing.T) {
	b := &idBackend{}
	addr := baregrpc.Serve(t, b.Register)
	src := auth.TokenSourceFunc(func(context.Context) (string, time.Time, error) { return "", time.Time{}, errors.New("idp down") })
	c := echov1.NewEchoServiceClient(baregrpc.Dial(t, addr,
		grpc.WithChainUnaryInterceptor(auth.UnaryClientInterceptor(src, auth.WithInsecureTransport()))))
	if code, _, _ := echo(grpckittest.Context(t, 10*time.Second), c); code != codes.Unauthenticated {
		t.Errorf("code: got %v, want Unauthenticated", code)
	}
	if got := b.Faults.Calls(); got != 0 {
		t.Errorf("handler calls: got %d, want 0", got)
	}
}
