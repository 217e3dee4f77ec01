package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeSource hands each Watch's Updater to the test and blocks until the
// resolver closes: for the benchmarks, which drive the core's Updater
// directly, and for a source that returns early. The other tests feed
// resolvers through grpckittest.Source.
type fakeSource struct {
	updaters chan resolver.Updater
	returned atomic.Int32
	early    error // returned at once by the first Watch, if set
	calls    atomic.Int32
}

func newFakeSource() *fakeSource {
	return &fakeSource{updaters: make(chan resolver.Updater, 4)}
}

func (s *fakeSource) Watch(ctx context.Context, _ resolver.Target, u resolver.Updater) error {
	defer s.returned.Add(1)
	if s.calls.Add(1) == 1 && s.early != nil {
		return s.early
	}
	s.updaters <- u
	<-ctx.Done()
	return nil
}

func (s *fakeSource) updater(t *testing.T) resolver.Updater {
	t.Helper()
	select {
	case u := <-s.updaters:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("Watch not called within 5s")
		return nil
	}
}

func dial(t *testing.T, b *resolver.Builder, service string) echov1.EchoServiceClient {
	t.Helper()
	conn := grpckittest.Dial(t, b.Scheme()+":///"+service, grpckit.WithLogger(quiet),
		client.WithDialOptions(grpc.WithResolvers(b)))
	conn.Connect()
	return echov1.NewEchoServiceClient(conn)
}

// watched waits until src has n resolvers watching it, and returns their
// targets.
func watched(t *testing.T, src *grpckittest.Source, n int) []resolver.Target {
	t.Helper()
	wait.For(t, 5*time.Second, fmt.Sprintf("%d resolvers watching", n), func() bool { return len(src.Watching()) == n })
	return src.Watching()
}

// serve starts an echo server for the resolvers to find.
func serve(t *testing.T) *grpckittest.Server {
	return grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithLogger(quiet))
}

func call(t *testing.T, ec echov1.EchoServiceClient) error {
	t.Helper()
	_, err := ec.Echo(grpckittest.Context(t, 2*time.Second), &echov1.EchoRequest{Message: "hi"})
	return err
}

func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func TestBuildDoesNotWaitAndReportsErrors(t *testing.T) {
	src := &grpckittest.Source{}
	b, err := resolver.NewBuilder("fake", src, resolver.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ec := dial(t, b, "svc")
	if tg := watched(t, src, 1)[0]; tg.Service != "svc" || tg.Scheme != "fake" {
		t.Errorf("target = %+v, want scheme fake, service svc", tg)
	}
	src.ReportError(errors.New("registry down"))
	err = call(t, ec)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "registry down") {
		t.Fatalf("call before the first answer: got %v, want Unavailable mentioning the registry error", err)
	}
	in := serve(t)
	src.Replace(resolver.Endpoint{Addr: in.Addr})
	wait.For(t, 10*time.Second, "calls succeed", func() bool { return call(t, ec) == nil })
}

func TestKeepsEndpointsOnErrors(t *testing.T) {
	src := &grpckittest.Source{}
	reg := prometheus.NewRegistry()
	now := time.Unix(1000, 0)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	b, err := resolver.NewBuilder("fake", src, resolver.WithLogger(quiet), resolver.WithRegisterer(reg),
		resolver.WithClock(func() time.Time { return *clock.Load() }))
	if err != nil {
		t.Fatal(err)
	}
	ec := dial(t, b, "svc")
	watched(t, src, 1)
	in := serve(t)
	src.Update(resolver.Change{Key: in.Addr, Endpoint: resolver.Endpoint{Addr: in.Addr, Weight: 3}})
	wait.For(t, 10*time.Second, "calls succeed", func() bool { return call(t, ec) == nil })
	updates := gather(t, reg, "grpckit_resolver_updates_total")

	for range 5 {
		src.ReportError(errors.New("registry down"))
	}
	later := now.Add(90 * time.Second)
	clock.Store(&later)
	for i := range 10 {
		if err := call(t, ec); err != nil {
			t.Fatalf("call %d while the registry is down: %v, want success", i, err)
		}
	}
	for _, tc := range []struct {
		metric string
		want   float64
	}{
		{"grpckit_resolver_endpoints", 1},
		{"grpckit_resolver_errors_total", 5},
		{"grpckit_resolver_staleness_seconds", 90},
		{"grpckit_resolver_last_update_timestamp_seconds", 1000},
		{"grpckit_resolver_updates_total", updates},
	} {
		if got := gather(t, reg, tc.metric); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.metric, got, tc.want)
		}
	}
	// Back in sync without news: staleness 0, nothing pushed.
	src.Update()
	src.Replace(resolver.Endpoint{Addr: in.Addr, Weight: 3})
	if got := gather(t, reg, "grpckit_resolver_staleness_seconds"); got != 0 {
		t.Errorf("staleness after sync = %v, want 0", got)
	}
	if got := gather(t, reg, "grpckit_resolver_updates_total"); got != updates {
		t.Errorf("updates after identical states = %v, want %v", got, updates)
	}
	// The service really has no instances: the list empties.
	src.Replace()
	wait.For(t, 10*time.Second, "calls fail", func() bool { return status.Code(call(t, ec)) == codes.Unavailable })
	if got := gather(t, reg, "grpckit_resolver_endpoints"); got != 0 {
		t.Errorf("endpoints = %v, want 0", got)
	}
}

func TestMaxStaleness(t *testing.T) {
	src := &grpckittest.Source{}
	b, err := resolver.NewBuilder("fake", src, resolver.WithLogger(quiet), resolver.WithMaxStaleness(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ec := dial(t, b, "svc")
	watched(t, src, 1)
	in := serve(t)
	src.Replace(resolver.Endpoint{Addr: in.Addr})
	wait.For(t, 10*time.Second, "calls succeed", func() bool { return call(t, ec) == nil })
	// A sync without news first: staleness counts from here, not from
	// before the connection was made.
	src.Update()
	src.ReportError(errors.New("registry down")) // once: the timer must act
	if err := call(t, ec); err != nil {
		t.Fatalf("call right after the error: %v, want success", err)
	}
	// The balancer's error text varies ("no children to pick from" for
	// round_robin); the resolver logs the cause.
	wait.For(t, 10*time.Second, "endpoints given up", func() bool { return status.Code(call(t, ec)) == codes.Unavailable })
	src.Update()
	wait.For(t, 10*time.Second, "endpoints back", func() bool { return call(t, ec) == nil })
}

func TestWatchRestartedAndClosed(t *testing.T) {
	src := newFakeSource()
	src.early = errors.New("boom")
	b, err := resolver.NewBuilder("fake", src, resolver.WithLogger(quiet),
		resolver.WithRestartBackoff(resolver.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.New("fake:///svc", grpckit.WithInsecure(), grpckit.WithLogger(quiet), client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		t.Fatal(err)
	}
	conn.Connect()
	src.updater(t) // the second Watch
	if got := src.calls.Load(); got != 2 {
		t.Errorf("Watch calls = %d, want 2", got)
	}
	_ = conn.Close()
	wait.For(t, 10*time.Second, "Watch returned after Close", func() bool { return src.returned.Load() == 2 })
}

func TestNewBuilderErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := resolver.NewBuilder("x", &grpckittest.Source{}, resolver.WithRegisterer(reg)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		scheme string
		src    resolver.Source
		opts   []resolver.Option
	}{
		{"empty scheme", "", &grpckittest.Source{}, nil},
		{"bad scheme", "1x", &grpckittest.Source{}, nil},
		{"nil source", "x", nil, nil},
		{"negative staleness", "x", &grpckittest.Source{}, []resolver.Option{resolver.WithMaxStaleness(-1)}},
		{"same scheme same registry", "x", &grpckittest.Source{}, []resolver.Option{resolver.WithRegisterer(reg)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := resolver.NewBuilder(tc.scheme, tc.src, tc.opts...); err == nil {
				t.Error("got nil error, want one")
			}
		})
	}
	if _, err := resolver.NewBuilder("y", &grpckittest.Source{}, resolver.WithRegisterer(reg)); err != nil {
		t.Errorf("second scheme on the same registry: %v, want nil", err)
	}
}

func TestEndpointAttributesReachBalancer(t *testing.T) {
	e := resolver.Endpoint{Addr: "10.0.0.1:80", Weight: 5, Zone: "z", Version: "v1", Metadata: map[string]string{"k": "v"}}
	got := resolver.FromGRPC(resolver.ToGRPC(e))
	if !got.Equal(e) {
		t.Errorf("FromGRPC(ToGRPC(e)) = %+v, want %+v", got, e)
	}
}
