package metrics

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
)

// value returns a counter's value.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func okHandler(context.Context, any) (any, error) { return nil, nil }

func call(s *Server, method string) {
	_, _ = s.UnaryServerInterceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: method}, okHandler)
}

// TestCacheBound checks that the cache stops growing at maxCachedMethods
// and that methods past the bound are still counted.
func TestCacheBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := NewServer(reg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	const extra = 10
	for i := range maxCachedMethods + extra {
		call(s, fmt.Sprintf("/svc.S/M%d", i))
	}
	last := fmt.Sprintf("/svc.S/M%d", maxCachedMethods+extra-1)
	call(s, last)

	s.c.mu.Lock()
	n := s.c.n
	s.c.mu.Unlock()
	if n != maxCachedMethods {
		t.Errorf("cached methods: got %d, want %d", n, maxCachedMethods)
	}
	if !s.c.full.Load() {
		t.Errorf("cache full: got false, want true")
	}
	if got := value(s.c.handled.WithLabelValues("unary", "svc.S", last[len("/svc.S/"):], "OK")); got != 2 {
		t.Errorf("handled OK of %s (past the bound): got %v, want 2", last, got)
	}
	ch := make(chan prometheus.Metric, 2*(maxCachedMethods+extra))
	s.c.started.Collect(ch)
	close(ch)
	if got := len(ch); got != maxCachedMethods+extra {
		t.Errorf("started series: got %d, want %d", got, maxCachedMethods+extra)
	}
}

// TestInvalidUTF8 checks that a method name that is not valid UTF-8 (client
// method names come from the caller) is counted under a valid label value
// instead of making prometheus panic.
func TestInvalidUTF8(t *testing.T) {
	s, err := NewServer(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	call(s, "/svc.S/bad\xff")
	if got := value(s.c.started.WithLabelValues("unary", "svc.S", "bad\uFFFD")); got != 1 {
		t.Fatalf("started of the sanitized method: got %v, want 1", got)
	}
}

// TestConcurrentFirstCalls checks that calls racing to create a method's
// series are all counted, on the same series.
func TestConcurrentFirstCalls(t *testing.T) {
	s, err := NewServer(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	const workers, methods = 8, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m := range methods {
				call(s, fmt.Sprintf("/svc.S/M%d", m))
			}
		})
	}
	wg.Wait()
	for m := range methods {
		name := fmt.Sprintf("M%d", m)
		for _, c := range []prometheus.Counter{
			s.c.started.WithLabelValues("unary", "svc.S", name),
			s.c.received.WithLabelValues("unary", "svc.S", name),
			s.c.sent.WithLabelValues("unary", "svc.S", name),
			s.c.handled.WithLabelValues("unary", "svc.S", name, "OK"),
		} {
			if got := value(c); got != workers {
				t.Fatalf("%s: got %v, want %d", name, got, workers)
			}
		}
	}
}
