package resolver_test

import (
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/wait"
	"github.com/grpckit/grpckit/resolver"
)

// build builds b's resolver for target without a real ClientConn and
// closes it (again: Close is idempotent) when the test ends.
func build(t *testing.T, b *resolver.Builder, target string) grpcresolver.Resolver {
	t.Helper()
	u, _ := url.Parse(target)
	r, err := b.Build(grpcresolver.Target{URL: *u}, &nopCC{}, grpcresolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// snapshotOf returns the Snapshot entries of scheme.
func snapshotOf(scheme string) []resolver.State {
	var out []resolver.State
	for _, s := range resolver.Snapshot() {
		if s.Scheme == scheme {
			out = append(out, s)
		}
	}
	return out
}

func TestSnapshot(t *testing.T) {
	src := &grpckittest.Source{}
	now := time.Unix(1000, 0)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	b, err := resolver.NewBuilder("snap", src, resolver.WithLogger(quiet), resolver.WithClock(func() time.Time { return *clock.Load() }))
	if err != nil {
		t.Fatal(err)
	}
	ec := dial(t, b, "svc")
	watched(t, src, 1)

	// Before the first answer: listed, not answered, no endpoints.
	wait.For(t, 5*time.Second, "resolver listed", func() bool { return len(snapshotOf("snap")) == 1 })
	if s := snapshotOf("snap")[0]; s.Service != "svc" || s.Answered || len(s.Endpoints) != 0 {
		t.Errorf("before the first answer: got %+v, want service svc, not answered, no endpoints", s)
	}

	src.ReportError(errors.New("not yet"))
	if s := snapshotOf("snap")[0]; s.Answered || s.Error != "not yet" || s.Staleness != 0 {
		t.Errorf("error before the first answer: got %+v, want not answered, error \"not yet\", staleness 0", s)
	}

	in := serve(t)
	src.Replace(resolver.Endpoint{Addr: in.Addr, Weight: 3, Zone: "z1", Metadata: map[string]string{"k": "v"}})
	wait.For(t, 10*time.Second, "calls succeed", func() bool { return call(t, ec) == nil })
	s := snapshotOf("snap")[0]
	if !s.Answered || len(s.Endpoints) != 1 || s.Endpoints[0].Addr != in.Addr || s.Endpoints[0].Weight != 3 || s.Endpoints[0].Zone != "z1" {
		t.Errorf("after the answer: got %+v, want one endpoint %s weight 3 zone z1", s, in.Addr)
	}
	s.Endpoints[0].Metadata["k"] = "changed by the caller"
	if got := snapshotOf("snap")[0].Endpoints[0].Metadata["k"]; got != "v" {
		t.Errorf("metadata after the caller changed its copy: got %q, want v", got)
	}
	if !s.LastSync.Equal(now) || s.Staleness != 0 || s.Error != "" {
		t.Errorf("in sync: got last sync %v, staleness %v, error %q; want %v, 0, none", s.LastSync, s.Staleness, s.Error, now)
	}

	// Registry down: endpoints kept, error and staleness shown.
	src.ReportError(errors.New("registry down"))
	later := now.Add(42 * time.Second)
	clock.Store(&later)
	s = snapshotOf("snap")[0]
	if len(s.Endpoints) != 1 || s.Error != "registry down" || s.Staleness != 42*time.Second {
		t.Errorf("registry down: got %d endpoints, error %q, staleness %v; want 1, \"registry down\", 42s", len(s.Endpoints), s.Error, s.Staleness)
	}
	src.Update()
	if s := snapshotOf("snap")[0]; s.Error != "" || s.Staleness != 0 {
		t.Errorf("in sync again: got error %q, staleness %v; want none, 0", s.Error, s.Staleness)
	}
}

func TestSnapshotForgetsClosedResolvers(t *testing.T) {
	src := &grpckittest.Source{}
	b, err := resolver.NewBuilder("snapclosed", src, resolver.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	r := build(t, b, "snapclosed:///svc")
	watched(t, src, 1)
	if got := len(snapshotOf("snapclosed")); got != 1 {
		t.Fatalf("live resolvers: got %d, want 1", got)
	}
	r.Close()
	if got := len(snapshotOf("snapclosed")); got != 0 {
		t.Errorf("after Close: got %d resolvers, want 0", got)
	}
}

func TestSnapshotGaveUp(t *testing.T) {
	src := &grpckittest.Source{}
	now := time.Unix(1000, 0)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	b, err := resolver.NewBuilder("snapstale", src, resolver.WithLogger(quiet), resolver.WithMaxStaleness(10*time.Second),
		resolver.WithClock(func() time.Time { return *clock.Load() }))
	if err != nil {
		t.Fatal(err)
	}
	build(t, b, "snapstale:///svc")
	watched(t, src, 1)
	src.Replace(resolver.Endpoint{Addr: "127.0.0.1:1"})
	later := now.Add(11 * time.Second)
	clock.Store(&later)
	src.ReportError(errors.New("registry down"))
	s := snapshotOf("snapstale")
	if len(s) != 1 || !s[0].GaveUp || len(s[0].Endpoints) != 0 || s[0].Staleness != 11*time.Second {
		t.Fatalf("past the max staleness: got %+v, want gave up, no endpoints, staleness 11s", s)
	}
}
