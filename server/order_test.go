package server_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// recorder installs, at every slot, interceptors that note the slot's name
// when a call passes, and the status code it saw coming back.
type recorder struct {
	mu    sync.Mutex
	seen  []string
	codes map[string]codes.Code
}

func (r *recorder) note(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, name)
}

func (r *recorder) result(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes[name] = status.Code(err)
}

func (r *recorder) take() ([]string, map[string]codes.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, c := r.seen, r.codes
	r.seen, r.codes = nil, map[string]codes.Code{}
	return s, c
}

func (r *recorder) options() []server.Option {
	var opts []server.Option
	for _, s := range server.DefaultOrder() {
		name := s.String()
		opts = append(opts,
			server.WithUnaryInterceptor(s, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				r.note(name)
				resp, err := h(ctx, req)
				r.result(name, err)
				return resp, err
			}),
			server.WithStreamInterceptor(s, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				r.note(name)
				err := h(srv, ss)
				r.result(name, err)
				return err
			}))
	}
	return opts
}

func names(order []server.Slot) []string {
	var out []string
	for _, s := range order {
		out = append(out, s.String())
	}
	return out
}

func TestInterceptorOrder(t *testing.T) {
	want := []string{"tracing", "metrics", "logging", "recovery", "limit", "auth", "validation", "user"}
	if got := names(server.DefaultOrder()); !slices.Equal(got, want) {
		t.Fatalf("DefaultOrder = %v, want %v", got, want)
	}
	reversed := server.DefaultOrder()
	slices.Reverse(reversed)

	for _, tc := range []struct {
		name  string
		order []server.Slot
	}{
		{"default", nil},
		{"overridden", reversed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{codes: map[string]codes.Code{}}
			opts := rec.options()
			wantSeq := want
			if tc.order != nil {
				opts = append(opts, server.WithOrder(tc.order...))
				wantSeq = names(tc.order)
			}
			in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, opts...)
			ec := echov1.NewEchoServiceClient(in.Dial(t))
			ctx := grpckittest.Context(t, 10*time.Second)

			if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
				t.Fatal(err)
			}
			if got, _ := rec.take(); !slices.Equal(got, wantSeq) {
				t.Fatalf("unary order = %v, want %v", got, wantSeq)
			}
			ss, err := ec.ServerStream(ctx, &echov1.ServerStreamRequest{Message: "hi", Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			for err == nil {
				_, err = ss.Recv()
			}
			if got, _ := rec.take(); !slices.Equal(got, wantSeq) {
				t.Fatalf("stream order = %v, want %v", got, wantSeq)
			}
		})
	}
}

// TestRecoveryPosition proves where grpckit's own recovery sits: the slots
// outside it see the Internal it produces, so metrics and logs record it.
func TestRecoveryPosition(t *testing.T) {
	rec := &recorder{codes: map[string]codes.Code{}}
	b := &grpckittest.Backend{}
	b.Faults.Next(1, grpckittest.Fault{Panic: true})
	in := grpckittest.NewServer(t, b.Register, append(rec.options(), grpckit.WithLogger(slog.New(slog.DiscardHandler)))...)
	ec := echov1.NewEchoServiceClient(in.Dial(t))
	ctx := grpckittest.Context(t, 10*time.Second)

	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "panic"}); status.Code(err) != codes.Internal {
		t.Fatalf("got %v, want Internal", err)
	}
	_, got := rec.take()
	for _, outside := range []string{"tracing", "metrics", "logging"} {
		if got[outside] != codes.Internal {
			t.Errorf("slot %s saw %v, want Internal (it sits outside recovery)", outside, got[outside])
		}
	}
	// A user interceptor added at SlotRecovery runs inside grpckit's own.
	for _, inside := range []string{"recovery", "limit", "auth", "validation", "user"} {
		if _, ok := got[inside]; ok {
			t.Errorf("slot %s saw a result, want none: the panic unwinds through it", inside)
		}
	}
}
