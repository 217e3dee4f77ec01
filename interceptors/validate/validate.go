package validate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/internal/methodname"
)

// Message is the status message of a call rejected for an invalid request.
// The violations are in the status details.
const Message = "invalid request"

// internalMessage is the status message of a call failed by an invalid
// response or a broken rule; the cause is logged, never sent.
const internalMessage = "internal error"

// errInternal is the one Internal error: allocated once, returned as is.
var errInternal = status.Error(codes.Internal, internalMessage)

// Option configures [New]. The same options serve the server and the
// client interceptors.
type Option func(*config)

type config struct {
	validator protovalidate.Validator
	responses bool
	logger    *slog.Logger
}

// WithValidator sets the protovalidate validator. Default: one built by
// protovalidate.New() in [New].
func WithValidator(v protovalidate.Validator) Option {
	return func(c *config) { c.validator = v }
}

// WithResponses makes the interceptors validate responses too (replies and
// the messages a server sends or a client receives on streams); an invalid
// response fails with codes.Internal. Default: off, only requests are
// validated.
func WithResponses(on bool) Option {
	return func(c *config) { c.responses = on }
}

// WithLogger sets the logger of invalid responses and broken rules (level
// Error) and of invalid requests (level Debug). Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// Validator validates messages for the interceptors. It is safe for
// concurrent use; one Validator may back any number of interceptors.
type Validator struct {
	v         protovalidate.Validator
	responses bool
	logger    *slog.Logger
}

// New returns a Validator. Without [WithValidator] it builds a
// protovalidate validator, whose error it returns.
func New(opts ...Option) (*Validator, error) {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.validator == nil {
		v, err := protovalidate.New()
		if err != nil {
			return nil, fmt.Errorf("validate: protovalidate.New: %w", err)
		}
		c.validator = v
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return &Validator{v: c.validator, responses: c.responses, logger: c.logger}, nil
}

// validateAller and validater are protoc-gen-validate's methods.
type validateAller interface{ ValidateAll() error }
type validater interface{ Validate() error }

// fieldError is protoc-gen-validate's error of one field.
type fieldError interface {
	Field() string
	Reason() string
}

// multiError is protoc-gen-validate's error of ValidateAll.
type multiError interface{ AllErrors() []error }

// causer is protoc-gen-validate's field error of an embedded message.
type causer interface{ Cause() error }

// validate runs protovalidate, then the message's own method. It returns
// the field violations of an invalid message, or a non-nil err when a rule
// could not be evaluated.
func (v *Validator) validate(msg any) (viol []*errdetails.BadRequest_FieldViolation, err error) {
	if m, ok := msg.(proto.Message); ok {
		if err := v.v.Validate(m); err != nil {
			var ve *protovalidate.ValidationError
			if !errors.As(err, &ve) {
				return nil, err
			}
			viol = make([]*errdetails.BadRequest_FieldViolation, 0, len(ve.Violations))
			for _, x := range ve.Violations {
				desc := x.Proto.GetMessage()
				if desc == "" {
					desc = x.Proto.GetRuleId()
				}
				viol = append(viol, &errdetails.BadRequest_FieldViolation{
					Field:       protovalidate.FieldPathString(x.Proto.GetField()),
					Description: desc,
				})
			}
			if len(viol) == 0 {
				viol = append(viol, &errdetails.BadRequest_FieldViolation{Description: err.Error()})
			}
			return viol, nil
		}
	}
	var err2 error
	switch m := msg.(type) {
	case validateAller:
		err2 = m.ValidateAll()
	case validater:
		err2 = m.Validate()
	default:
		return nil, nil
	}
	if err2 == nil {
		return nil, nil
	}
	viol = appendPGV(viol, "", err2)
	return viol, nil
}

// appendPGV appends the violations of a protoc-gen-validate error (or any
// error), prefixing field paths with prefix.
func appendPGV(viol []*errdetails.BadRequest_FieldViolation, prefix string, err error) []*errdetails.BadRequest_FieldViolation {
	if me, ok := err.(multiError); ok {
		for _, e := range me.AllErrors() {
			if e != nil {
				viol = appendPGV(viol, prefix, e)
			}
		}
		return viol
	}
	fe, ok := err.(fieldError)
	if !ok {
		return append(viol, &errdetails.BadRequest_FieldViolation{Field: prefix, Description: err.Error()})
	}
	field := fe.Field()
	if prefix != "" {
		field = prefix + "." + field
	}
	if c, ok := err.(causer); ok {
		if cause := c.Cause(); cause != nil {
			switch cause.(type) {
			case fieldError, multiError:
				return appendPGV(viol, field, cause)
			}
		}
	}
	return append(viol, &errdetails.BadRequest_FieldViolation{Field: field, Description: fe.Reason()})
}

// check validates msg, a request (response false) or a response.
func (v *Validator) check(ctx context.Context, method string, msg any, response bool) error {
	viol, err := v.validate(msg)
	switch {
	case err != nil:
		v.log(ctx, slog.LevelError, "validate: rule error", method, slog.String("error", err.Error()))
		return errInternal
	case viol == nil:
		return nil
	case response:
		v.log(ctx, slog.LevelError, "validate: invalid response not sent", method, slog.Any("violations", viol))
		return errInternal
	}
	v.log(ctx, slog.LevelDebug, "validate: invalid request", method, slog.Any("violations", viol))
	st, derr := status.New(codes.InvalidArgument, Message).WithDetails(&errdetails.BadRequest{FieldViolations: viol})
	if derr != nil {
		return status.Error(codes.InvalidArgument, Message)
	}
	return st.Err()
}

func (v *Validator) log(ctx context.Context, level slog.Level, msg, method string, attr slog.Attr) {
	if !v.logger.Enabled(ctx, level) {
		return
	}
	svc, m, ok := methodname.Split(method)
	if ok {
		svc = svc[1:]
	} else {
		svc, m = method, ""
	}
	v.logger.LogAttrs(ctx, level, msg, slog.String("grpc.service", svc), slog.String("grpc.method", m), attr)
}

// UnaryServerInterceptor validates the request (and the response with
// [WithResponses]) of unary calls; see the package doc.
func UnaryServerInterceptor(v *Validator) grpc.UnaryServerInterceptor {
	return unaryServerStage(v).Interceptor()
}

// unaryServerStage is UnaryServerInterceptor as a stage, which the server
// builder chains without allocating (see internal/chain).
func unaryServerStage(v *Validator) chain.Stage {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
		if err := v.check(ctx, info.FullMethod, req, false); err != nil {
			return nil, err
		}
		resp, err := next(ctx, req, info, handler)
		if err != nil || !v.responses {
			return resp, err
		}
		if err := v.check(ctx, info.FullMethod, resp, true); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// StreamServerInterceptor validates every message the handler receives
// (and sends, with [WithResponses]); see the package doc.
func StreamServerInterceptor(v *Validator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ws := &serverStream{ServerStream: ss, v: v, method: info.FullMethod}
		err := handler(srv, ws)
		if ws.recvFailed != nil {
			return ws.recvFailed
		}
		if ws.sendFailed != nil {
			return ws.sendFailed
		}
		return err
	}
}

// serverStream validates the messages of one server stream. grpc-go calls
// RecvMsg from one goroutine and SendMsg from one goroutine, possibly
// different ones, so each side has its own failure; the handler has
// returned when the interceptor reads them.
type serverStream struct {
	grpc.ServerStream
	v                      *Validator
	method                 string
	recvFailed, sendFailed error
}

func (s *serverStream) RecvMsg(m any) error {
	if s.recvFailed != nil {
		return s.recvFailed
	}
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.v.check(s.Context(), s.method, m, false); err != nil {
		s.recvFailed = err
		return err
	}
	return nil
}

func (s *serverStream) SendMsg(m any) error {
	if s.v.responses {
		if s.sendFailed != nil {
			return s.sendFailed
		}
		if err := s.v.check(s.Context(), s.method, m, true); err != nil {
			s.sendFailed = err
			return err
		}
	}
	return s.ServerStream.SendMsg(m)
}

// UnaryClientInterceptor validates the request before it is sent (and the
// reply, with [WithResponses]); see the package doc.
func UnaryClientInterceptor(v *Validator) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if err := v.check(ctx, method, req, false); err != nil {
			return err
		}
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		if v.responses {
			return v.check(ctx, method, reply, true)
		}
		return nil
	}
}

// StreamClientInterceptor validates every message before it is sent (and
// every message received, with [WithResponses]); an invalid message ends
// the stream. See the package doc.
func StreamClientInterceptor(v *Validator) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		// The stream's own context, canceled when a message fails (so that
		// the stream ends, even if the caller forgets it, as a generated
		// server-streaming client does when its one SendMsg fails) or when
		// the stream finishes.
		ctx, cancel := context.WithCancel(ctx)
		opts = append(opts[:len(opts):len(opts)], grpc.OnFinish(func(error) { cancel() }))
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		return &clientStream{ClientStream: cs, v: v, method: method, cancel: cancel}, nil
	}
}

// clientStream validates the messages of one client stream. As on the
// server, SendMsg and RecvMsg may run on two goroutines: each side has its
// own failure; RecvMsg reads SendMsg's under mu.
type clientStream struct {
	grpc.ClientStream
	v          *Validator
	method     string
	cancel     context.CancelFunc
	mu         sync.Mutex
	sendFailed error // written under mu
	recvFailed error
}

func (s *clientStream) SendMsg(m any) error {
	if s.sendFailed != nil {
		return s.sendFailed
	}
	if err := s.v.check(s.Context(), s.method, m, false); err != nil {
		s.mu.Lock()
		s.sendFailed = err
		s.mu.Unlock()
		s.cancel()
		return err
	}
	return s.ClientStream.SendMsg(m)
}

func (s *clientStream) RecvMsg(m any) error {
	if s.recvFailed != nil {
		return s.recvFailed
	}
	if err := s.ClientStream.RecvMsg(m); err != nil {
		s.mu.Lock()
		failed := s.sendFailed
		s.mu.Unlock()
		if failed != nil {
			// The stream ended because a message failed: report that,
			// not the cancellation.
			return failed
		}
		return err
	}
	if s.v.responses {
		if err := s.v.check(s.Context(), s.method, m, true); err != nil {
			s.recvFailed = err
			s.cancel()
			return err
		}
	}
	return nil
}
