package recovery_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/recovery"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/logbuf"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeStream struct{ grpc.ServerStream }

func (fakeStream) Context() context.Context { return context.Background() }

func TestWrapService(t *testing.T) {
	orig := func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		if srv == "panic" {
			panic("boom")
		}
		return "ok", nil
	}
	origStream := func(srv any, _ grpc.ServerStream) error {
		if srv == "panic" {
			panic("stream boom")
		}
		return nil
	}
	desc := &grpc.ServiceDesc{
		ServiceName: "s",
		Methods:     []grpc.MethodDesc{{MethodName: "M", Handler: orig}},
		Streams:     []grpc.StreamDesc{{StreamName: "S", Handler: origStream}},
	}
	var logs bytes.Buffer
	w := recovery.WrapService(desc, recovery.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if w == desc || w.ServiceName != "s" || w.Methods[0].MethodName != "M" || w.Streams[0].StreamName != "S" {
		t.Fatalf("wrapped desc %+v", w)
	}
	// The original is untouched: it still panics.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("WrapService changed the original handler")
			}
		}()
		_, _ = desc.Methods[0].Handler("panic", context.Background(), nil, nil)
	}()
	resp, err := w.Methods[0].Handler("fine", context.Background(), nil, nil)
	if resp != "ok" || err != nil {
		t.Fatalf("no panic: %v, %v", resp, err)
	}
	resp, err = w.Methods[0].Handler("panic", context.Background(), nil, nil)
	if st := status.Convert(err); resp != nil || st.Code() != codes.Internal || st.Message() != recovery.Message {
		t.Fatalf("panic: %v, %v; want Internal %q", resp, err, recovery.Message)
	}
	if err := w.Streams[0].Handler("panic", fakeStream{}); status.Code(err) != codes.Internal {
		t.Fatalf("stream panic: %v", err)
	}
	if err := w.Streams[0].Handler("fine", fakeStream{}); err != nil {
		t.Fatalf("stream: %v", err)
	}
	for _, want := range []string{"boom", "stream boom", "goroutine "} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// On a bare grpc-go server, a panicking unary handler or stream handler
// answers Internal with the generic message, without the stack; the panic
// and the stack go to the log; the server goes on serving.
func TestInterceptorsOnBareServer(t *testing.T) {
	var logs logbuf.Buffer
	l := recovery.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	b := &grpckittest.Backend{}
	addr := baregrpc.Serve(t, b.Register, grpc.ChainUnaryInterceptor(recovery.UnaryServerInterceptor(l)),
		grpc.ChainStreamInterceptor(recovery.StreamServerInterceptor(l)))
	ec := echov1.NewEchoServiceClient(baregrpc.Dial(t, addr))
	ctx := grpckittest.Context(t, 10*time.Second)

	b.Faults.Next(2, grpckittest.Fault{Panic: true}) // the unary call, then the stream
	_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != recovery.Message {
		t.Errorf("panicking unary call: got %v, want Internal %q", err, recovery.Message)
	}
	bs, err := ec.BidiStream(ctx)
	if err == nil {
		_, err = bs.Recv()
	}
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != recovery.Message {
		t.Errorf("panicking stream: got %v, want Internal %q", err, recovery.Message)
	}
	if r, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "after"}); err != nil || r.GetMessage() != "after" {
		t.Fatalf("call after the panics: got %v, %v; want the echo", r, err)
	}
	out := logs.String()
	for _, want := range []string{"grpckittest: injected panic", "goroutine ", "grpckittest.(*Backend).Echo", "grpckittest.(*Backend).BidiStream"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
