package chain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc"
)

// staticInvoker stands for grpc-go's invoke: a top-level function.
func staticInvoker(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
	if log, ok := req.(*[]string); ok {
		*log = append(*log, "invoke")
	}
	return nil
}

func recordingUnary(name string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		log := req.(*[]string)
		*log = append(*log, name+">")
		err := invoker(ctx, method, req, reply, cc, opts...)
		*log = append(*log, "<"+name)
		return err
	}
}

func TestUnaryClientOrder(t *testing.T) {
	i := UnaryClient([]grpc.UnaryClientInterceptor{recordingUnary("a"), recordingUnary("b"), recordingUnary("c")})
	for range 2 { // the second call runs on the cached composition
		var log []string
		if err := i(context.Background(), "/s/m", &log, nil, nil, staticInvoker); err != nil {
			t.Fatal(err)
		}
		if want := []string{"a>", "b>", "c>", "invoke", "<c", "<b", "<a"}; !slices.Equal(log, want) {
			t.Fatalf("order %v, want %v", log, want)
		}
	}
}

// Each final invoker is the one the call passed, also when callers pass
// different closures (the cache must not hand one call another's invoker).
func TestUnaryClientDistinctInvokers(t *testing.T) {
	i := UnaryClient([]grpc.UnaryClientInterceptor{recordingUnary("a"), recordingUnary("b")})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 200 {
				want := fmt.Sprint(g, "/", n)
				var got string
				inv := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
					got = want
					return nil
				}
				var log []string
				_ = i(context.Background(), "/s/m", &log, nil, nil, inv)
				if got != want {
					errs <- fmt.Errorf("call %s ran invoker of %q", want, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A retrying interceptor may call its invoker more than once.
func TestUnaryClientRetryCallsInnerTwice(t *testing.T) {
	retry := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		_ = invoker(ctx, method, req, reply, cc, opts...)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	i := UnaryClient([]grpc.UnaryClientInterceptor{retry, recordingUnary("b")})
	var log []string
	_ = i(context.Background(), "/s/m", &log, nil, nil, staticInvoker)
	if want := []string{"b>", "invoke", "<b", "b>", "invoke", "<b"}; !slices.Equal(log, want) {
		t.Fatalf("got %v, want %v", log, want)
	}
}

func TestUnaryClientNoAllocs(t *testing.T) {
	nop := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	i := UnaryClient([]grpc.UnaryClientInterceptor{nop, nop, nop, nop})
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _ = i(ctx, "/s/m", nil, nil, nil, staticInvoker) }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}

type fakeStream struct{ grpc.ClientStream }

func staticStreamer(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return fakeStream{}, nil
}

func TestStreamClientOrder(t *testing.T) {
	var log []string
	mk := func(name string) grpc.StreamClientInterceptor {
		return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			log = append(log, name)
			return streamer(ctx, desc, cc, method, opts...)
		}
	}
	fail := errors.New("open failed")
	failing := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		log = append(log, "failing")
		return nil, fail
	}
	s := StreamClient([]grpc.StreamClientInterceptor{mk("a"), mk("b")})
	for range 2 {
		log = nil
		if cs, err := s(context.Background(), &grpc.StreamDesc{}, nil, "/s/m", staticStreamer); err != nil || cs == nil {
			t.Fatalf("stream %v, %v", cs, err)
		}
		if !slices.Equal(log, []string{"a", "b"}) {
			t.Fatalf("order %v", log)
		}
	}
	log = nil
	if _, err := s(context.Background(), &grpc.StreamDesc{}, nil, "/s/m", failing); !errors.Is(err, fail) || !slices.Equal(log, []string{"a", "b", "failing"}) {
		t.Fatalf("with another streamer: %v, %v", err, log)
	}
}
