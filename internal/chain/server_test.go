package chain_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/internal/chain"
)

type trail []string

func recording(name string) chain.Stage {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, next chain.Next) (any, error) {
		t := req.(*trail)
		*t = append(*t, name+">")
		resp, err := next(ctx, req, info, h)
		*t = append(*t, "<"+name)
		return resp, err
	}
}

func plain(name string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		t := req.(*trail)
		*t = append(*t, name+">")
		resp, err := h(ctx, req)
		*t = append(*t, "<"+name)
		return resp, err
	}
}

type key struct{}

func handler(ctx context.Context, req any) (any, error) {
	t := req.(*trail)
	*t = append(*t, "handler:"+ctx.Value(key{}).(string))
	return "resp", nil
}

func TestChainOrderAndContext(t *testing.T) {
	withCtx := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, next chain.Next) (any, error) {
		return next(context.WithValue(ctx, key{}, "set by b"), req, info, h)
	}
	i := chain.UnaryServer(recording("a"), withCtx, chain.FromInterceptor(plain("c")), recording("d"))
	for range 2 {
		var tr trail
		resp, err := i(context.Background(), &tr, &grpc.UnaryServerInfo{FullMethod: "/s/m"}, handler)
		if resp != "resp" || err != nil {
			t.Fatalf("got %v, %v", resp, err)
		}
		if want := (trail{"a>", "c>", "d>", "handler:set by b", "<d", "<c", "<a"}); !slices.Equal(tr, want) {
			t.Fatalf("order %v, want %v", tr, want)
		}
	}
}

// A stage may call next twice (a retry), and may end the call without
// calling it.
func TestChainRetryAndShortCircuit(t *testing.T) {
	fail := errors.New("no")
	twice := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, next chain.Next) (any, error) {
		_, _ = next(ctx, req, info, h)
		return next(ctx, req, info, h)
	}
	stop := func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler, chain.Next) (any, error) {
		return nil, fail
	}
	ctx := context.WithValue(context.Background(), key{}, "x")
	var tr trail
	_, _ = chain.UnaryServer(twice, recording("b"))(ctx, &tr, &grpc.UnaryServerInfo{}, handler)
	if want := (trail{"b>", "handler:x", "<b", "b>", "handler:x", "<b"}); !slices.Equal(tr, want) {
		t.Fatalf("retry: %v, want %v", tr, want)
	}
	tr = nil
	if _, err := chain.UnaryServer(recording("a"), stop, recording("c"))(ctx, &tr, &grpc.UnaryServerInfo{}, handler); !errors.Is(err, fail) {
		t.Fatalf("short circuit: %v", err)
	}
	if want := (trail{"a>", "<a"}); !slices.Equal(tr, want) {
		t.Fatalf("short circuit: %v, want %v", tr, want)
	}
	if chain.UnaryServer() != nil {
		t.Error("Chain() is not nil")
	}
}

func TestChainAllocatesNothing(t *testing.T) {
	nop := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, next chain.Next) (any, error) {
		return next(ctx, req, info, h)
	}
	i := chain.UnaryServer(nop, nop, nop, nop, nop)
	single := chain.Stage(nop).Interceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/s/m"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _, _ = i(ctx, nil, info, h) }); n != 0 {
		t.Errorf("chain of 5: %v allocations per call, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = single(ctx, nil, info, h) }); n != 0 {
		t.Errorf("one stage as an interceptor: %v allocations per call, want 0", n)
	}
}

// BenchmarkChain compares five no-op stages with grpc-go's chaining of five
// no-op interceptors (grpc.ChainUnaryInterceptor's composition, rebuilt
// here as grpc-go does it).
func BenchmarkChain(b *testing.B) {
	nopS := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, next chain.Next) (any, error) {
		return next(ctx, req, info, h)
	}
	nopI := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(ctx, req)
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/s/m"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	b.Run("stages", func(b *testing.B) {
		i := chain.UnaryServer(nopS, nopS, nopS, nopS, nopS)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = i(ctx, nil, info, h)
		}
	})
	b.Run("grpc-go", func(b *testing.B) {
		i := grpcChain([]grpc.UnaryServerInterceptor{nopI, nopI, nopI, nopI, nopI})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = i(ctx, nil, info, h)
		}
	})
}

// grpcChain is grpc-go's chainUnaryInterceptors (server.go, v1.85).
func grpcChain(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return ics[0](ctx, req, info, chainHandler(ics, 0, info, handler))
	}
}

func chainHandler(ics []grpc.UnaryServerInterceptor, curr int, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if curr == len(ics)-1 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return ics[curr+1](ctx, req, info, chainHandler(ics, curr+1, info, final))
	}
}

// StageOf takes back the stage behind an interceptor made by
// Stage.Interceptor, so that a chain of them allocates nothing.
func TestStageOf(t *testing.T) {
	a, b := recording("a").Interceptor(), recording("b").Interceptor()
	i := chain.UnaryServer(chain.StageOf(a), chain.StageOf(b))
	var tr trail
	ctx := context.WithValue(context.Background(), key{}, "ctx")
	if _, err := i(ctx, &tr, &grpc.UnaryServerInfo{FullMethod: "/s/m"}, handler); err != nil {
		t.Fatal(err)
	}
	if want := (trail{"a>", "b>", "handler:ctx", "<b", "<a"}); !slices.Equal(tr, want) {
		t.Fatalf("trail: got %v, want %v", tr, want)
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/s/m"}
	nop := chain.Stage(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler, next chain.Next) (any, error) {
		return next(ctx, req, info, h)
	}).Interceptor()
	nops := chain.UnaryServer(chain.StageOf(nop), chain.StageOf(nop), chain.StageOf(nop))
	h := func(context.Context, any) (any, error) { return nil, nil }
	if got := testing.AllocsPerRun(1000, func() { _, _ = nops(ctx, nil, info, h) }); got != 0 {
		t.Errorf("allocs per call of three taken-back stages: got %v, want 0", got)
	}
	// An interceptor made by Stage.Interceptor alone runs the stage.
	tr = nil
	if _, err := a(ctx, &tr, info, handler); err != nil {
		t.Fatal(err)
	}
	if want := (trail{"a>", "handler:ctx", "<a"}); !slices.Equal(tr, want) {
		t.Fatalf("alone: got %v, want %v", tr, want)
	}
}
