package recovery_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/recovery"
)

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
