package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/methodname"
)

// The status messages of rejected calls. They are fixed: they say nothing
// about why the call was refused; the reason goes to the logger.
const (
	MessageUnauthenticated  = "unauthenticated"
	MessagePermissionDenied = "permission denied"
)

// The rejection errors: allocated once, returned as is.
var (
	errUnauthenticated  = status.Error(codes.Unauthenticated, MessageUnauthenticated)
	errPermissionDenied = status.Error(codes.PermissionDenied, MessagePermissionDenied)
)

// Configuration errors returned by [New].
var (
	// ErrNoAuthenticator is returned when neither a verifier nor mTLS is set.
	ErrNoAuthenticator = errors.New("auth: no verifier and no mTLS: nothing can authenticate a caller")
	// ErrInvalid is wrapped by the errors of invalid option values.
	ErrInvalid = errors.New("auth: invalid option")
)

// Identity is an authenticated caller.
type Identity struct {
	// Subject names the caller: a token's "sub" claim, or for a client
	// certificate its SPIFFE ID (the spiffe:// URI SAN) if it has one, its
	// subject's distinguished name otherwise.
	Subject string
	// Issuer is a token's "iss" claim; for a certificate, its issuer's
	// distinguished name.
	Issuer string
	// Audience is a token's "aud" claim.
	Audience []string
	// Scopes and Roles are what the token grants (the "scope" claim split
	// at spaces, or "scp"; the "roles" claim). Certificates grant none.
	Scopes []string
	Roles  []string
	// SPIFFEID is a client certificate's spiffe:// URI SAN, if any.
	SPIFFEID string
	// Claims holds a token's claims as decoded JSON. Nil for certificates.
	Claims map[string]any
	// Certificate is the verified client certificate that authenticated
	// the caller over mTLS, nil for tokens.
	Certificate *x509.Certificate
}

type ctxKey struct{}

// FromContext returns the identity of the caller that [New]'s
// interceptors authenticated, if any. A public method's handler sees
// none.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	if !ok {
		return Identity{}, false
	}
	return *id, true
}

// NewContext returns ctx carrying id, as the server interceptors store it
// (for tests of handlers that read [FromContext]).
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, &id)
}

// Verifier verifies a bearer token. Verify returns the caller's identity,
// or an error if the token is not valid: the error is logged, never sent
// to the caller. It must be safe for concurrent use.
type Verifier interface {
	Verify(ctx context.Context, token string) (Identity, error)
}

// VerifierFunc adapts a function to [Verifier].
type VerifierFunc func(ctx context.Context, token string) (Identity, error)

// Verify calls f.
func (f VerifierFunc) Verify(ctx context.Context, token string) (Identity, error) {
	return f(ctx, token)
}

// Option configures [New].
type Option func(*config)

type config struct {
	verifier Verifier
	mtls     bool
	rules    []Rule
	logger   *slog.Logger
	errs     []error
}

// WithVerifier authenticates callers by the bearer token in their
// "authorization" metadata ("Bearer <token>"), verified by v (such as a
// [JWT] verifier). Default: no token authentication.
func WithVerifier(v Verifier) Option {
	return func(c *config) {
		if v == nil {
			c.errs = append(c.errs, fmt.Errorf("%w: WithVerifier(nil)", ErrInvalid))
			return
		}
		c.verifier = v
	}
}

// WithMTLS authenticates callers that present no bearer token (or all
// callers, without [WithVerifier]) by their client certificate. The transport must verify the certificate chain
// (tls.Config.ClientAuth = tls.RequireAndVerifyClientCert or
// VerifyClientCertIfGiven, with ClientCAs): a connection without a
// verified chain authenticates nobody. Default: off.
func WithMTLS() Option {
	return func(c *config) { c.mtls = true }
}

// WithRules sets the authorization rules (see [Rule]). Once any rule is
// set, a method that no rule matches is denied. Rules are checked at [New].
// Default: no rules: every authenticated caller may call every method.
// Health and reflection are public unless a rule names their pattern.
func WithRules(rules ...Rule) Option {
	return func(c *config) { c.rules = append(c.rules, rules...) }
}

// WithLogger sets the logger of rejections. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, fmt.Errorf("%w: WithLogger(nil)", ErrInvalid))
			return
		}
		c.logger = l
	}
}

// Checker authenticates and authorizes calls. It is safe for concurrent
// use; one Checker may back several interceptors.
type Checker struct {
	verifier Verifier
	mtls     bool
	rules    *ruleSet
	logger   *slog.Logger
}

// New returns a Checker. At least one of [WithVerifier] and [WithMTLS] is
// required; invalid rules fail here.
func New(opts ...Option) (*Checker, error) {
	c := &config{logger: slog.Default()}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	if c.verifier == nil && !c.mtls {
		return nil, ErrNoAuthenticator
	}
	rs, err := newRuleSet(c.rules)
	if err != nil {
		return nil, err
	}
	return &Checker{verifier: c.verifier, mtls: c.mtls, rules: rs, logger: c.logger}, nil
}

// Log keys of rejections.
const (
	keyService = "grpc.service"
	keyMethod  = "grpc.method"
	keyCode    = "grpc.code"
	keyReason  = "auth.reason"
	keySubject = "auth.subject"
	keyPeer    = "peer.address"
)

// check authenticates and authorizes a call to method and returns the
// context the handler gets.
func (k *Checker) check(ctx context.Context, method string) (context.Context, error) {
	r := k.rules.match(method)
	if r != nil && r.Public {
		return ctx, nil
	}
	id, err := k.authenticate(ctx)
	if err != nil {
		k.reject(ctx, method, codes.Unauthenticated, err.Error(), "")
		return nil, errUnauthenticated
	}
	if k.rules.enforced && (r == nil || !r.allows(id)) {
		reason := "no rule allows the caller"
		if r == nil {
			reason = "no rule matches the method"
		}
		k.reject(ctx, method, codes.PermissionDenied, reason, id.Subject)
		return nil, errPermissionDenied
	}
	return context.WithValue(ctx, ctxKey{}, id), nil
}

// errNoCredentials: no authorization metadata.
var errNoCredentials = errors.New("no bearer token")

func (k *Checker) authenticate(ctx context.Context) (*Identity, error) {
	if k.verifier != nil {
		token, err := grpcauth.AuthFromMD(ctx, "bearer")
		if err == nil {
			if token == "" {
				return nil, errors.New("empty bearer token")
			}
			if j, ok := k.verifier.(*JWT); ok {
				return j.verify(ctx, token)
			}
			id, err := k.verifier.Verify(ctx, token)
			if err != nil {
				return nil, err
			}
			return &id, nil
		}
		if hasAuthorization(ctx) {
			return nil, errors.New("malformed authorization metadata or not a bearer token")
		}
	}
	if k.mtls {
		if id, ok := peerIdentity(ctx); ok {
			return id, nil
		}
		if k.verifier == nil {
			return nil, errors.New("no verified client certificate")
		}
		return nil, errors.New("no bearer token and no verified client certificate")
	}
	return nil, errNoCredentials
}

func (k *Checker) reject(ctx context.Context, method string, code codes.Code, reason, subject string) {
	if !k.logger.Enabled(ctx, slog.LevelWarn) {
		return
	}
	svc, m, ok := methodname.Split(method)
	if ok {
		svc = svc[1:]
	} else {
		svc, m = method, ""
	}
	attrs := []slog.Attr{
		slog.String(keyService, svc),
		slog.String(keyMethod, m),
		slog.String(keyCode, code.String()),
		slog.String(keyReason, reason),
	}
	if subject != "" {
		attrs = append(attrs, slog.String(keySubject, subject))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String(keyPeer, p.Addr.String()))
	}
	k.logger.LogAttrs(ctx, slog.LevelWarn, "auth: call rejected", attrs...)
}

// peerIdentity is the identity of the client certificate that the
// transport verified, if any.
func peerIdentity(ctx context.Context) (*Identity, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil, false
	}
	return certIdentity(ti.State.VerifiedChains[0][0]), true
}

// certIdentity is the identity of a verified client certificate: its
// SPIFFE ID (the first spiffe:// URI SAN) as subject if it has one, its
// subject's distinguished name otherwise.
func certIdentity(cert *x509.Certificate) *Identity {
	id := &Identity{Subject: cert.Subject.String(), Issuer: cert.Issuer.String(), Certificate: cert}
	for _, u := range cert.URIs {
		if strings.EqualFold(u.Scheme, "spiffe") {
			id.SPIFFEID = u.String()
			id.Subject = id.SPIFFEID
			break
		}
	}
	return id
}

// UnaryServerInterceptor authenticates and authorizes unary calls: a call
// without valid credentials fails with codes.Unauthenticated, one that no
// rule allows with codes.PermissionDenied. The handler finds the caller
// with [FromContext].
func UnaryServerInterceptor(k *Checker) grpc.UnaryServerInterceptor {
	return unaryServerStage(k).Interceptor()
}

// unaryServerStage is UnaryServerInterceptor as a stage, which the server
// builder chains without allocating (see internal/chain).
func unaryServerStage(k *Checker) chain.Stage {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
		ctx, err := k.check(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return next(ctx, req, info, handler)
	}
}

// StreamServerInterceptor is [UnaryServerInterceptor] for streams: the
// check runs once, when the stream starts.
func StreamServerInterceptor(k *Checker) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := k.check(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		if ctx == ss.Context() {
			return handler(srv, ss)
		}
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// hasAuthorization reports whether the call carries authorization
// metadata at all (of another scheme, or malformed).
func hasAuthorization(ctx context.Context) bool {
	return len(metadata.ValueFromIncomingContext(ctx, "authorization")) > 0
}
