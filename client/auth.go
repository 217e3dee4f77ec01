package client

import (
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/interceptors/auth"
)

// tokenConfig holds the per-call token option; nil source: none.
type tokenConfig struct {
	src  auth.TokenSource
	opts []auth.ClientOption
}

// WithPerRPCToken sends "authorization: Bearer <token>" with every call
// and stream, the token from src (wrap it in auth.Cached to reuse a token
// until shortly before it expires). The token is never sent over a
// connection without transport security: with [WithInsecure], New fails
// unless opts hold auth.WithInsecureTransport. It
// is a per-RPC credential of the connection, so it sits in no slot: every
// attempt a retry makes carries a fresh token. Default: no token.
func WithPerRPCToken(src auth.TokenSource, opts ...auth.ClientOption) Option {
	return option(func(c *config) {
		if src == nil {
			c.common.Errorf("client: WithPerRPCToken(nil)")
			return
		}
		c.token = tokenConfig{src: src, opts: opts}
	})
}

// tokenDialOptions returns the dial option of WithPerRPCToken, if given.
func tokenDialOptions(c *config) []grpc.DialOption {
	if c.token.src == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithPerRPCCredentials(auth.PerRPCCredentials(c.token.src, c.token.opts...))}
}
