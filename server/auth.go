package server

import (
	"fmt"

	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/chain"
)

// authConfig holds the authentication options; nil: no auth.
type authConfig struct {
	opts []auth.Option
	on   bool
}

// WithAuth authenticates and authorizes every call and stream at
// [SlotAuth], after the limits and before validation and the user's
// interceptors, with an auth.Checker built by [New] from opts (pass
// auth.WithVerifier, auth.WithMTLS, auth.WithRules; see package auth).
// Calls without valid credentials fail with codes.Unauthenticated, calls
// no rule allows with codes.PermissionDenied. Health checks and reflection
// stay public unless a rule names them. Rejections are logged on the
// server's logger unless opts hold auth.WithLogger. A verifier that owns a
// goroutine (auth.JWT on a JWKS URL) is the caller's to Close after the
// server stops. Default: no authentication.
func WithAuth(opts ...auth.Option) Option {
	return option(func(c *config) {
		c.auth = authConfig{opts: opts, on: true}
	})
}

// installAuth builds the checker once and installs it at SlotAuth.
func (s *Server) installAuth(b *builtins) error {
	if !s.cfg.auth.on {
		return nil
	}
	opts := append([]auth.Option{auth.WithLogger(s.cfg.common.Logger)}, s.cfg.auth.opts...)
	k, err := auth.New(opts...)
	if err != nil {
		return fmt.Errorf("server: WithAuth: %w", err)
	}
	b.add(SlotAuth, chain.StageOf(auth.UnaryServerInterceptor(k)), auth.StreamServerInterceptor(k))
	return nil
}
