package etcd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpckit/grpckit/internal/etcdtest"
	"github.com/grpckit/grpckit/resolver"
)

// recorder is an Updater that keeps the current set.
type recorder struct {
	mu      sync.Mutex
	set     map[string]resolver.Endpoint
	replace int
	invalid int
	minSize int // the smallest set handed over; set it before watching
	errs    []error
}

func (r *recorder) Replace(m map[string]resolver.Endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replace++
	r.set = map[string]resolver.Endpoint{}
	for k, e := range m {
		r.set[k] = e
	}
	r.minSize = min(r.minSize, len(r.set))
}

func (r *recorder) Apply(cs ...resolver.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		if c.Delete {
			delete(r.set, c.Key)
		} else {
			r.set[c.Key] = c.Endpoint
		}
		r.minSize = min(r.minSize, len(r.set))
	}
}

func (r *recorder) Invalid(string, error)       { r.mu.Lock(); r.invalid++; r.mu.Unlock() }
func (r *recorder) ReportError(err error)       { r.mu.Lock(); r.errs = append(r.errs, err); r.mu.Unlock() }
func (r *recorder) ResolveNow() <-chan struct{} { return nil }

func (r *recorder) size() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.set) }

func TestWatchReloadsAfterCompaction(t *testing.T) {
	e := etcdtest.StartTestEtcd(t)
	e.RequireEmbedded(t) // compacting a shared etcd would discard its history
	cli := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prefix := e.Prefix + "svc/"
	r1, err := cli.Put(ctx, prefix+"a", `{"address":"10.0.0.1:80"}`)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := cli.Put(ctx, prefix+"b", `{"address":"10.0.0.2:80"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, r2.Header.Revision); err != nil {
		t.Fatal(err)
	}
	s := &source{c: cli, cfg: builderConfig{common: common{prefix: e.Prefix, logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		timeout: time.Second, progress: time.Second}}
	rec := &recorder{set: map[string]resolver.Endpoint{}}

	// A watch from before the compaction ends with errCompacted ...
	err = s.watch(ctx, prefix, r1.Header.Revision-1, rec, map[string]resolver.Endpoint{})
	if !errors.Is(err, errCompacted) {
		t.Fatalf("watch from a compacted revision: got %v, want errCompacted", err)
	}
	// (Watch then reloads at once, without a backoff or an error.) Watch
	// reads the current keys and follows changes from there.
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Watch(wctx, resolver.Target{Service: "svc"}, rec) }()
	defer func() { wcancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for rec.size() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := rec.size(); got != 2 {
		t.Fatalf("endpoints after reload: got %d, want 2", got)
	}
	if _, err := cli.Delete(ctx, prefix+"a"); err != nil {
		t.Fatal(err)
	}
	for rec.size() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := rec.size(); got != 1 {
		t.Errorf("endpoints after a delete: got %d, want 1", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 0 {
		t.Errorf("errors reported: %v, want none", rec.errs)
	}
}

// A watch cut off from etcd while keys change and the history is compacted
// resumes from a compacted revision when the network comes back: the
// source reloads and ends with the current set, and keeps the last known
// set (never an empty one) in between.
func TestWatchSurvivesPartitionWithCompaction(t *testing.T) {
	e := etcdtest.StartTestEtcd(t)
	e.RequireEmbedded(t) // compacting a shared etcd would discard its history
	direct := e.Client(t)
	proxy := etcdtest.NewTestProxy(t, e.Endpoints()[0])
	viaProxy, err := etcdtest.NewTestClient([]string{proxy.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = viaProxy.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := e.Prefix + "svc/"
	for _, k := range []string{"a", "b"} {
		if _, err := direct.Put(ctx, prefix+k, `{"address":"10.0.0.`+k+`:80"}`); err != nil {
			t.Fatal(err)
		}
	}
	s := &source{c: viaProxy, cfg: builderConfig{common: common{prefix: e.Prefix, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		backoff: resolver.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}},
		timeout: time.Second, progress: 500 * time.Millisecond}}
	rec := &recorder{set: map[string]resolver.Endpoint{}}
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Watch(wctx, resolver.Target{Service: "svc"}, rec) }()
	defer func() { wcancel(); <-done }()
	waitSet(t, rec, "a", "b")
	rec.mu.Lock()
	rec.minSize = 2
	loads := rec.replace
	rec.mu.Unlock()

	proxy.Cut()
	if _, err := direct.Delete(ctx, prefix+"a"); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Put(ctx, prefix+"c", `{"address":"10.0.0.3:80"}`); err != nil {
		t.Fatal(err)
	}
	r, err := direct.Put(ctx, prefix+"d", `{"address":"10.0.0.4:80"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Compact(ctx, r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	// Cut off: the last known set stays.
	time.Sleep(700 * time.Millisecond)
	if got := keys(rec); !slices.Equal(got, []string{prefix + "a", prefix + "b"}) {
		t.Fatalf("while cut off: %v, want the last known a, b", got)
	}
	proxy.Restore()
	waitSet(t, rec, "b", "c", "d")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.replace <= loads {
		t.Errorf("no reload after the compacted watch resumed (%d loads)", rec.replace)
	}
	if rec.minSize < 2 {
		t.Errorf("the set shrank to %d endpoints on the way; want never below 2", rec.minSize)
	}
}

func keys(r *recorder) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks := make([]string, 0, len(r.set))
	for k := range r.set {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// waitSet waits until the recorder holds exactly the keys (under any
// prefix) names.
func waitSet(t *testing.T, r *recorder, names ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := keys(r)
		match := len(got) == len(names)
		for i := 0; match && i < len(got); i++ {
			match = strings.HasSuffix(got[i], "/"+names[i])
		}
		if match {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints %v, want %v", got, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
