package etcd_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/grpckit/grpckit/internal/wait"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/resolver/etcd"
)

// build starts a resolver of f's builder for service and waits for its
// first answer, n endpoints.
func (f *fixture) build(t *testing.T, service string, n int) {
	t.Helper()
	u, _ := url.Parse("etcd:///" + service)
	cc := &stateCC{}
	r, err := f.builder.Build(grpcresolver.Target{URL: *u}, cc, grpcresolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	wait.For(t, 5*time.Second, service+" resolved", func() bool { return len(cc.endpoints()) == n })
}

// put writes key (under the test's prefix) with an endpoint value.
func (f *fixture) put(t *testing.T, key, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.cli.Put(ctx, f.etcd.Prefix+key, `{"address":"`+addr+`"}`); err != nil {
		t.Fatal(err)
	}
}

// neverUnreachable fails if, within d, f's resolvers report an error or a
// staleness, or resolver.Snapshot shows one with an error. d covers many
// progress rounds (f's progress interval is 200ms, or progressSlow's 1s).
func (f *fixture) neverUnreachable(t *testing.T, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		errs := metricValue(t, f.reg, "grpckit_resolver_errors_total")
		stale := metricValue(t, f.reg, "grpckit_resolver_staleness_seconds")
		if errs != 0 || stale != 0 {
			for _, st := range resolver.Snapshot() {
				if st.Error != "" {
					t.Logf("%s:///%s: error %q, staleness %v", st.Scheme, st.Service, st.Error, st.Staleness)
				}
			}
			t.Fatalf("healthy etcd reported unreachable: %v errors, staleness %vs", errs, stale)
		}
	}
}

// progressSlow gives the progress tests a progress round of 1s, whose
// revision read may take up to 1s: a read of 200ms (the fixture's) can be
// slower than that on a loaded machine, and one slow read is an error. The
// bug these tests guard against reported an error on every round.
var progressSlow = []etcd.BuilderOption{etcd.WithProgressInterval(time.Second), etcd.WithRequestTimeout(2 * time.Second)}

// A healthy etcd that nobody writes to answers no progress request of a
// watch that starts at the next revision: the resolver must not take that
// silence for an outage (it once reported "no answer from etcd" on every
// progress round after the first).
func TestQuietEtcdIsNotReportedUnreachable(t *testing.T) {
	f := newFixture(t, progressSlow...)
	f.put(t, svc+"/a", "10.0.0.1:80")
	f.build(t, svc, 1)
	f.neverUnreachable(t, 6*time.Second)
}

// Resolvers of one client share its watch stream unless kept apart, and
// etcd answers a progress request on a stream only when every watch on it
// can be answered: a resolver started later, at a newer revision, must not
// silence the progress of an older one.
func TestResolversOfOneClientStayInSync(t *testing.T) {
	f := newFixture(t, progressSlow...)
	f.put(t, svc+"/a", "10.0.0.1:80")
	f.put(t, "other/b", "10.0.0.2:80")
	f.build(t, svc, 1)
	// A revision the first watch has not heard of, then a second watch
	// from after it.
	f.put(t, "unrelated/x", "10.0.0.3:80")
	f.build(t, "other", 1)
	f.neverUnreachable(t, 6*time.Second)
}

// After etcd restarts, the client resumes the watch from the revision
// after the last one it heard of, so a quiet etcd again answers no progress
// request: the resolver is in sync again and stays so.
func TestQuietEtcdAfterRestartStaysInSync(t *testing.T) {
	f := newFixture(t, progressSlow...)
	f.etcd.RequireEmbedded(t)
	f.put(t, svc+"/a", "10.0.0.1:80")
	f.build(t, svc, 1)
	f.etcd.Stop(t)
	wait.For(t, 5*time.Second, "outage noticed", func() bool { return metricValue(t, f.reg, "grpckit_resolver_errors_total") > 0 })
	f.etcd.Restart(t)
	wait.For(t, 10*time.Second, "in sync again", func() bool { return metricValue(t, f.reg, "grpckit_resolver_staleness_seconds") == 0 })
	errs := metricValue(t, f.reg, "grpckit_resolver_errors_total")
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got := metricValue(t, f.reg, "grpckit_resolver_errors_total"); got != errs {
			t.Fatalf("%v errors after etcd was back and in sync, want none", got-errs)
		}
	}
}
