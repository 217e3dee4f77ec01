package server

import (
	"fmt"

	"github.com/grpckit/grpckit/interceptors/validate"
	"github.com/grpckit/grpckit/internal/chain"
)

// validationConfig holds the validation options; on false: no validation.
type validationConfig struct {
	opts []validate.Option
	on   bool
}

// WithValidation validates the requests of every call and the messages
// received on every stream at [SlotValidation], after the limits and auth
// and before the user's interceptors, with a validate.Validator built by
// [New] from opts: the buf.validate rules of the messages (protovalidate)
// and their protoc-gen-validate methods. An invalid request fails with
// codes.InvalidArgument and google.rpc.BadRequest details and never reaches
// the handler; see package validate. Responses are validated only with
// validate.WithResponses(true). Logs go to the server's logger unless opts
// hold validate.WithLogger. Default: no validation.
func WithValidation(opts ...validate.Option) Option {
	return option(func(c *config) {
		c.validation = validationConfig{opts: opts, on: true}
	})
}

// installValidation builds the validator once and installs it at
// SlotValidation.
func (s *Server) installValidation(b *builtins) error {
	if !s.cfg.validation.on {
		return nil
	}
	opts := append([]validate.Option{validate.WithLogger(s.cfg.common.Logger)}, s.cfg.validation.opts...)
	v, err := validate.New(opts...)
	if err != nil {
		return fmt.Errorf("server: WithValidation: %w", err)
	}
	b.add(SlotValidation, chain.StageOf(validate.UnaryServerInterceptor(v)), validate.StreamServerInterceptor(v))
	return nil
}
