package auth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// TokenSource supplies the bearer token a client sends. Token returns the
// token and when it expires (the zero time: it does not). It must be safe
// for concurrent use.
type TokenSource interface {
	Token(ctx context.Context) (token string, expiry time.Time, err error)
}

// TokenSourceFunc adapts a function to [TokenSource].
type TokenSourceFunc func(ctx context.Context) (string, time.Time, error)

// Token calls f.
func (f TokenSourceFunc) Token(ctx context.Context) (string, time.Time, error) { return f(ctx) }

// StaticToken is a token that never expires.
func StaticToken(token string) TokenSource {
	return TokenSourceFunc(func(context.Context) (string, time.Time, error) { return token, time.Time{}, nil })
}

// DefaultRefreshBefore is how long before its expiry [Cached] replaces a
// token.
const DefaultRefreshBefore = time.Minute

// Cached returns a TokenSource that keeps src's token and asks src for a
// new one only when the kept one is within before of its expiry (or past
// it; a negative before counts as 0). Concurrent callers share one refresh; a caller waits for it as long
// as its context allows. An error is not kept: the next call tries again.
func Cached(src TokenSource, before time.Duration) TokenSource {
	return &cached{src: src, before: max(before, 0), sem: make(chan struct{}, 1)}
}

type cached struct {
	src    TokenSource
	before time.Duration
	sem    chan struct{} // held while refreshing

	mu     sync.Mutex
	token  string
	expiry time.Time
	ok     bool
}

func (c *cached) fresh(now time.Time) (string, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && (c.expiry.IsZero() || now.Before(c.expiry.Add(-c.before))) {
		return c.token, c.expiry, true
	}
	return "", time.Time{}, false
}

func (c *cached) Token(ctx context.Context) (string, time.Time, error) {
	if t, exp, ok := c.fresh(time.Now()); ok {
		return t, exp, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return "", time.Time{}, ctx.Err()
	}
	defer func() { <-c.sem }()
	if t, exp, ok := c.fresh(time.Now()); ok { // another caller refreshed it
		return t, exp, nil
	}
	t, exp, err := c.src.Token(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	c.mu.Lock()
	c.token, c.expiry, c.ok = t, exp, true
	c.mu.Unlock()
	return t, exp, nil
}

// ClientOption configures the client side: [PerRPCCredentials] and the
// client interceptors.
type ClientOption func(*clientConfig)

type clientConfig struct {
	insecure bool
}

// WithInsecureTransport lets the token travel over a connection without
// transport security (plaintext, for tests or a trusted local link).
// Default: calls on such a connection fail before anything is sent.
func WithInsecureTransport() ClientOption {
	return func(c *clientConfig) { c.insecure = true }
}

// PerRPCCredentials returns credentials that send "authorization: Bearer
// <token>" with every call, the token from src. grpc-go refuses to send
// them over a connection without transport security unless
// [WithInsecureTransport] is given. Use it as a dial option
// (grpc.WithPerRPCCredentials) or through the client interceptors.
func PerRPCCredentials(src TokenSource, opts ...ClientOption) credentials.PerRPCCredentials {
	c := &clientConfig{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return &bearer{src: src, secure: !c.insecure}
}

type bearer struct {
	src    TokenSource
	secure bool
	// last is the last token and its header value, reused while the
	// token does not change.
	last atomic.Pointer[[2]string]
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b *bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	t, _, err := b.src.Token(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		if s, ok := status.FromError(err); ok {
			return nil, s.Err()
		}
		return nil, status.Error(codes.Unauthenticated, fmt.Sprintf("auth: token source: %v", err))
	}
	if t == "" {
		return nil, status.Error(codes.Unauthenticated, "auth: token source returned an empty token")
	}
	last := b.last.Load()
	if last == nil || last[0] != t {
		last = &[2]string{t, "Bearer " + t}
		b.last.Store(last)
	}
	return map[string]string{"authorization": last[1]}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b *bearer) RequireTransportSecurity() bool { return b.secure }

// UnaryClientInterceptor sends src's token with every unary call; see
// [PerRPCCredentials].
func UnaryClientInterceptor(src TokenSource, opts ...ClientOption) grpc.UnaryClientInterceptor {
	creds := grpc.PerRPCCredentials(PerRPCCredentials(src, opts...))
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(ctx, method, req, reply, cc, append(opts, creds)...)
	}
}

// StreamClientInterceptor sends src's token when a stream starts; see
// [PerRPCCredentials].
func StreamClientInterceptor(src TokenSource, opts ...ClientOption) grpc.StreamClientInterceptor {
	creds := grpc.PerRPCCredentials(PerRPCCredentials(src, opts...))
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, append(opts, creds)...)
	}
}
