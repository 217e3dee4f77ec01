package client

import (
	"fmt"

	"github.com/grpckit/grpckit/interceptors/validate"
)

// validationConfig holds the validation options; on false: no validation.
type validationConfig struct {
	opts []validate.Option
	on   bool
}

// WithValidation validates every request before it is sent, with a
// validate.Validator built by [New] from opts (the buf.validate rules of
// the messages and their protoc-gen-validate methods; see package
// validate): an invalid request fails with codes.InvalidArgument and
// google.rpc.BadRequest details and is not sent; on a stream SendMsg
// returns that error and the stream ends. The client chain has no validation
// slot: it is installed at [SlotUser], innermost, first within the slot
// (before the user's interceptors there), so that the slots outside it
// (tracing, metrics, logging) see its rejections; each attempt of a retry
// is validated again (InvalidArgument is never retried). Replies and received stream messages are validated only
// with validate.WithResponses(true) (codes.Internal when invalid). Logs go
// to the client's logger unless opts hold validate.WithLogger. Default: no
// validation.
func WithValidation(opts ...validate.Option) Option {
	return option(func(c *config) {
		c.validation = validationConfig{opts: opts, on: true}
	})
}

// installValidation builds the validator once and installs it at SlotUser.
func installValidation(cfg *config, b *builtins) error {
	if !cfg.validation.on {
		return nil
	}
	opts := append([]validate.Option{validate.WithLogger(cfg.common.Logger)}, cfg.validation.opts...)
	v, err := validate.New(opts...)
	if err != nil {
		return fmt.Errorf("client: WithValidation: %w", err)
	}
	b.add(SlotUser, validate.UnaryClientInterceptor(v), validate.StreamClientInterceptor(v))
	return nil
}
