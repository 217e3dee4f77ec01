package validate_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	pv "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/validate"
	"github.com/grpckit/grpckit/internal/baregrpc"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// violation is a protovalidate violation of the field path elems, each
// "name" or "name[i]".
func violation(msg string, elems ...string) *protovalidate.Violation {
	fp := &pv.FieldPath{}
	for _, e := range elems {
		b := pv.FieldPathElement_builder{FieldName: proto.String(e)}
		if i := strings.IndexByte(e, '['); i >= 0 {
			var n uint64
			for _, c := range e[i+1 : len(e)-1] {
				n = n*10 + uint64(c-'0')
			}
			b.FieldName, b.Index = proto.String(e[:i]), proto.Uint64(n)
		}
		fp.Elements = append(fp.Elements, b.Build())
	}
	return &protovalidate.Violation{Proto: pv.Violation_builder{Field: fp, Message: proto.String(msg)}.Build()}
}

// fake is a protovalidate.Validator returning err for the messages reject
// selects.
type fake struct {
	reject func(proto.Message) bool
	err    error
}

func (f fake) Validate(m proto.Message, _ ...protovalidate.ValidationOption) error {
	if f.reject == nil || f.reject(m) {
		return f.err
	}
	return nil
}

// containsBad rejects messages whose "message" field contains "bad".
func containsBad(m proto.Message) bool {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("message")
	return fd != nil && fd.Kind() == protoreflect.StringKind && strings.Contains(r.Get(fd).String(), "bad")
}

// rejectBad is the fake of the end-to-end tests: a message containing
// "bad" violates a rule of its field "message".
var rejectBad = fake{reject: containsBad, err: &protovalidate.ValidationError{
	Violations: []*protovalidate.Violation{violation("must not be bad", "message")},
}}

func newValidator(t testing.TB, opts ...validate.Option) *validate.Validator {
	t.Helper()
	opts = append([]validate.Option{validate.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	v, err := validate.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// violations returns the code of err and its BadRequest field violations
// as "field: description".
func violations(t *testing.T, err error) (codes.Code, []string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a status", err)
	}
	var out []string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			t.Fatalf("detail %T, want *errdetails.BadRequest", d)
		}
		for _, fv := range br.GetFieldViolations() {
			out = append(out, fv.GetField()+": "+fv.GetDescription())
		}
	}
	return st.Code(), out
}

var info = &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}

// pgvField is a protoc-gen-validate field error.
type pgvField struct {
	field, reason string
	cause         error
}

func (e pgvField) Error() string  { return "invalid " + e.field + ": " + e.reason }
func (e pgvField) Field() string  { return e.field }
func (e pgvField) Reason() string { return e.reason }
func (e pgvField) Cause() error   { return e.cause }

// pgvMulti is a protoc-gen-validate multi-error.
type pgvMulti []error

func (m pgvMulti) Error() string      { return errors.Join(m...).Error() }
func (m pgvMulti) AllErrors() []error { return m }

// pgvAll has ValidateAll and Validate; ValidateAll must win.
type pgvAll struct{ err error }

func (m pgvAll) ValidateAll() error { return m.err }
func (m pgvAll) Validate() error    { return errors.New("Validate called, want ValidateAll") }

// pgvOne has Validate only.
type pgvOne struct{ err error }

func (m pgvOne) Validate() error { return m.err }

func TestUnaryServer(t *testing.T) {
	two := &protovalidate.ValidationError{Violations: []*protovalidate.Violation{
		violation("value length must be at most 1024 characters", "message"),
		violation("value is required", "items[2]", "name"),
	}}
	for _, tc := range []struct {
		name      string
		validator protovalidate.Validator
		req       any
		code      codes.Code
		want      []string
	}{
		{"valid", fake{}, &echov1.EchoRequest{Message: "hi"}, codes.OK, nil},
		{"violations", fake{err: two}, &echov1.EchoRequest{}, codes.InvalidArgument,
			[]string{"message: value length must be at most 1024 characters", "items[2].name: value is required"}},
		{"compilation error", fake{err: &protovalidate.CompilationError{}}, &echov1.EchoRequest{}, codes.Internal, nil},
		{"other error", fake{err: errors.New("boom")}, &echov1.EchoRequest{}, codes.Internal, nil},
		{"not a proto message", fake{err: two}, "just a string", codes.OK, nil},
		{"pgv ValidateAll ok", fake{}, pgvAll{}, codes.OK, nil},
		{"pgv ValidateAll", fake{}, pgvAll{pgvMulti{
			pgvField{field: "Message", reason: "too long"},
			pgvField{field: "Items[2]", reason: "embedded message failed validation", cause: pgvField{field: "Name", reason: "required"}},
		}}, codes.InvalidArgument, []string{"Message: too long", "Items[2].Name: required"}},
		{"pgv Validate", fake{}, pgvOne{pgvField{field: "Message", reason: "too long"}}, codes.InvalidArgument, []string{"Message: too long"}},
		{"pgv plain error", fake{}, pgvOne{errors.New("no good")}, codes.InvalidArgument, []string{": no good"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := validate.UnaryServerInterceptor(newValidator(t, validate.WithValidator(tc.validator)))
			called := false
			_, err := i(context.Background(), tc.req, info, func(context.Context, any) (any, error) {
				called = true
				return &echov1.EchoResponse{}, nil
			})
			code, got := violations(t, err)
			if code != tc.code {
				t.Fatalf("code %v (%v), want %v", code, err, tc.code)
			}
			if called != (code == codes.OK) {
				t.Errorf("handler called %v, want %v", called, code == codes.OK)
			}
			if code == codes.Internal && status.Convert(err).Message() != "internal error" {
				t.Errorf("message %q, want the generic \"internal error\"", status.Convert(err).Message())
			}
			if code == codes.InvalidArgument && status.Convert(err).Message() != validate.Message {
				t.Errorf("message %q, want %q", status.Convert(err).Message(), validate.Message)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("violations %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnaryServerResponses(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[on], func(t *testing.T) {
			i := validate.UnaryServerInterceptor(newValidator(t, validate.WithValidator(rejectBad), validate.WithResponses(on)))
			resp, err := i(context.Background(), &echov1.EchoRequest{Message: "ok"}, info, func(context.Context, any) (any, error) {
				return &echov1.EchoResponse{Message: "bad"}, nil
			})
			want := codes.OK
			if on {
				want = codes.Internal
			}
			if got := status.Code(err); got != want {
				t.Fatalf("code %v, want %v", got, want)
			}
			if on && resp != nil {
				t.Errorf("response %v sent, want none", resp)
			}
		})
	}
}

// serve starts an echo backend on a bare grpc-go server validated by v and
// returns a bare client of it and the number of Echo calls its handler saw.
func serve(t *testing.T, v *validate.Validator) (echov1.EchoServiceClient, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	b := &grpckittest.Backend{Handler: func(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		calls.Add(1)
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}}
	addr := baregrpc.Serve(t, b.Register,
		grpc.ChainUnaryInterceptor(validate.UnaryServerInterceptor(v)),
		grpc.ChainStreamInterceptor(validate.StreamServerInterceptor(v)))
	return echov1.NewEchoServiceClient(baregrpc.Dial(t, addr)), &calls
}

func TestEndToEndUnary(t *testing.T) {
	c, calls := serve(t, newValidator(t, validate.WithValidator(rejectBad)))
	ctx := t.Context()
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "good"}); err != nil {
		t.Fatalf("Echo(good): %v", err)
	}
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "bad"})
	code, got := violations(t, err)
	if code != codes.InvalidArgument || len(got) != 1 || got[0] != "message: must not be bad" {
		t.Fatalf("Echo(bad): got %v %q, want InvalidArgument [\"message: must not be bad\"]", code, got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler calls %d, want 1", n)
	}
}

func TestEndToEndBidi(t *testing.T) {
	c, _ := serve(t, newValidator(t, validate.WithValidator(rejectBad)))
	s, err := c.BidiStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "good"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.GetMessage() != "good" {
		t.Fatalf("Recv: got %v, %v; want good", r, err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "bad"}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	_, err = s.Recv()
	code, got := violations(t, err)
	if code != codes.InvalidArgument || len(got) != 1 || got[0] != "message: must not be bad" {
		t.Fatalf("Recv after bad: got %v %q, want InvalidArgument [\"message: must not be bad\"]", code, got)
	}
}

func TestEndToEndStreamResponses(t *testing.T) {
	badResp := fake{reject: func(m proto.Message) bool {
		_, ok := m.(*echov1.BidiStreamResponse)
		return ok && containsBad(m)
	}, err: rejectBad.err}
	c, _ := serve(t, newValidator(t, validate.WithValidator(badResp), validate.WithResponses(true)))
	s, err := c.BidiStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "bad"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); status.Code(err) != codes.Internal {
		t.Fatalf("Recv: got %v, %v; want Internal", r, err)
	}
}

// TestProtovalidate uses the real validator and the rule of
// echo.proto: EchoRequest.message is at most 1,024 characters.
func TestProtovalidate(t *testing.T) {
	c, calls := serve(t, newValidator(t))
	ctx := t.Context()
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: strings.Repeat("x", 1024)}); err != nil {
		t.Fatalf("Echo(1024 chars): %v", err)
	}
	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: strings.Repeat("x", 1025)})
	code, got := violations(t, err)
	if code != codes.InvalidArgument || len(got) != 1 || !strings.HasPrefix(got[0], "message: ") {
		t.Fatalf("Echo(1025 chars): got %v %q, want InvalidArgument with one violation of message", code, got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler calls %d, want 1", n)
	}
	// Messages without rules pass.
	s, err := c.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: strings.Repeat("x", 2000)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatalf("Recv: %v", err)
	}
	_ = s.CloseSend()
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after CloseSend: %v, want io.EOF", err)
	}
}

func TestClient(t *testing.T) {
	var calls atomic.Int64
	b := &grpckittest.Backend{Handler: func(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		calls.Add(1)
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}}
	addr := baregrpc.Serve(t, b.Register)
	badResp := fake{reject: func(m proto.Message) bool {
		switch m.(type) {
		case *echov1.EchoRequest, *echov1.BidiStreamRequest, *echov1.ServerStreamRequest:
			return containsBad(m)
		}
		return strings.Contains(m.ProtoReflect().Get(m.ProtoReflect().Descriptor().Fields().ByName("message")).String(), "evil")
	}, err: rejectBad.err}
	v := newValidator(t, validate.WithValidator(badResp), validate.WithResponses(true))
	c := echov1.NewEchoServiceClient(baregrpc.Dial(t, addr,
		grpc.WithChainUnaryInterceptor(validate.UnaryClientInterceptor(v)),
		grpc.WithChainStreamInterceptor(validate.StreamClientInterceptor(v))))
	ctx := t.Context()

	_, err := c.Echo(ctx, &echov1.EchoRequest{Message: "bad"})
	if code, got := violations(t, err); code != codes.InvalidArgument || len(got) != 1 {
		t.Fatalf("Echo(bad): got %v %q, want InvalidArgument with one violation", code, got)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("handler calls %d, want 0: an invalid request must not be sent", n)
	}
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "evil"}); status.Code(err) != codes.Internal {
		t.Errorf("Echo(evil reply): %v, want Internal", err)
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.BidiStream(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "good"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.GetMessage() != "good" {
		t.Fatalf("Recv: got %v, %v; want good", r, err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "evil"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); status.Code(err) != codes.Internal {
		t.Fatalf("Recv(evil): %v, want Internal", err)
	}
	if _, err := s.Recv(); status.Code(err) != codes.Internal {
		t.Fatalf("Recv after evil: %v, want Internal again", err)
	}

	// An invalid message ends the stream: SendMsg and RecvMsg return
	// InvalidArgument, the server never sees the message.
	s, err = c.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "bad"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Send(bad): %v, want InvalidArgument", err)
	}
	if err := s.Send(&echov1.BidiStreamRequest{Message: "good"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Send(good) after bad: %v, want InvalidArgument", err)
	}
	if _, err := s.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Recv after bad: %v, want InvalidArgument", err)
	}

	// A generated server-streaming client sends its one request with
	// SendMsg and, when that fails, returns the error without ending the
	// stream: the interceptor ends it.
	if _, err := c.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "bad", Count: 1}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("ServerStream(bad): %v, want InvalidArgument", err)
	}
}

// A stream handler that ignores the validation error still ends the stream
// with InvalidArgument.
func TestStreamServerHandlerIgnoresError(t *testing.T) {
	i := validate.StreamServerInterceptor(newValidator(t, validate.WithValidator(rejectBad)))
	ss := &fakeServerStream{msgs: []string{"good", "bad", "good"}}
	var got []string
	err := i(nil, ss, &grpc.StreamServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/BidiStream"}, func(_ any, s grpc.ServerStream) error {
		for {
			var m echov1.BidiStreamRequest
			if err := s.RecvMsg(&m); err != nil {
				got = append(got, status.Code(err).String())
				return nil // ignores it
			}
			got = append(got, m.GetMessage())
		}
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("stream ended with %v, want InvalidArgument", err)
	}
	if want := []string{"good", "InvalidArgument"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("handler received %v, want %v", got, want)
	}
}

type fakeServerStream struct {
	grpc.ServerStream
	msgs []string
}

func (f *fakeServerStream) Context() context.Context { return context.Background() }

func (f *fakeServerStream) RecvMsg(m any) error {
	if len(f.msgs) == 0 {
		return io.EOF
	}
	m.(*echov1.BidiStreamRequest).Message, f.msgs = f.msgs[0], f.msgs[1:]
	return nil
}
