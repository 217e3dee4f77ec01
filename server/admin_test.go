package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

// getJSON decodes the JSON served at url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: got %s (%s), want 200 application/json", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func TestAdminShowsResolversAndBalancers(t *testing.T) {
	backend := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithAccessLog(false))
	src := &grpckittest.Source{}
	src.Replace(resolver.Endpoint{Addr: backend.Addr, Zone: "z1"})
	b, err := resolver.NewBuilder("admintest", src)
	if err != nil {
		t.Fatal(err)
	}
	conn := grpckittest.Dial(t, "admintest:///echo", grpckit.WithAccessLog(false), client.WithDialOptions(grpc.WithResolvers(b)))
	ec := echov1.NewEchoServiceClient(conn)
	for range 3 {
		if _, err := ec.Echo(grpckittest.Context(t, 5*time.Second), &echov1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}

	adm := grpckittest.NewServer(t, nil, server.WithAdmin("127.0.0.1:0"), grpckit.WithAccessLog(false))
	base := "http://" + adm.Server.AdminAddr().String()

	var rs []resolver.State
	getJSON(t, base+"/debug/grpckit/resolvers", &rs)
	var found *resolver.State
	for i := range rs {
		if rs[i].Scheme == "admintest" {
			found = &rs[i]
		}
	}
	if found == nil {
		t.Fatalf("resolvers page: no admintest resolver in %+v", rs)
	}
	if found.Service != "echo" || !found.Answered || len(found.Endpoints) != 1 ||
		found.Endpoints[0].Addr != backend.Addr || found.Endpoints[0].Zone != "z1" {
		t.Errorf("resolvers page: got %+v, want service echo, answered, one endpoint %s in zone z1", *found, backend.Addr)
	}

	// A call is counted once it is done: poll.
	var bs []balancer.State
	defer func() {
		if t.Failed() {
			t.Logf("last balancers page: %+v", bs)
		}
	}()
	wait.For(t, 5*time.Second, "balancer counts the calls", func() bool {
		bs = nil
		getJSON(t, base+"/debug/grpckit/balancers", &bs)
		for _, s := range bs {
			if s.Target == "admintest:///echo" && len(s.Endpoints) == 1 {
				e := s.Endpoints[0]
				return s.Name == "p2c" && e.Addr == backend.Addr && e.StateName == "READY" && e.Calls == 3
			}
		}
		return false
	})
}

func get(t *testing.T, url string, mod func(*http.Request)) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// pprof is served only when asked for, and never the command line.
func TestAdminPprofOptIn(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []server.Option
		path string
		want int
	}{
		{"default index", nil, "/debug/pprof/", http.StatusNotFound},
		{"default heap", nil, "/debug/pprof/heap", http.StatusNotFound},
		{"default cmdline", nil, "/debug/pprof/cmdline", http.StatusNotFound},
		{"opted in index", []server.Option{server.WithPprof(true)}, "/debug/pprof/", http.StatusOK},
		{"opted in heap", []server.Option{server.WithPprof(true)}, "/debug/pprof/heap", http.StatusOK},
		{"opted in cmdline", []server.Option{server.WithPprof(true)}, "/debug/pprof/cmdline", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := grpckittest.NewServer(t, nil, append(tc.opts, server.WithAdmin("127.0.0.1:0"), grpckit.WithAccessLog(false))...)
			if got := get(t, "http://"+in.Server.AdminAddr().String()+tc.path, nil); got != tc.want {
				t.Errorf("GET %s: got %d, want %d", tc.path, got, tc.want)
			}
		})
	}
}

// The admin handler mounts on the user's own mux behind the user's own
// authentication, without WithAdmin.
func TestAdminHandlerBehindOwnAuth(t *testing.T) {
	in := grpckittest.NewServer(t, nil, grpckit.WithAccessLog(false))
	if in.Server.AdminAddr() != nil {
		t.Fatalf("AdminAddr without WithAdmin: got %v, want nil", in.Server.AdminAddr())
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", requireToken("s3cret", in.Server.AdminHandler())))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	auth := func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }
	for _, tc := range []struct {
		path string
		mod  func(*http.Request)
		want int
	}{
		{"/admin/metrics", nil, http.StatusUnauthorized},
		{"/admin/metrics", auth, http.StatusOK},
		{"/admin/healthz", auth, http.StatusOK},
		{"/admin/debug/grpckit/resolvers", auth, http.StatusOK},
	} {
		if got := get(t, hs.URL+tc.path, tc.mod); got != tc.want {
			t.Errorf("GET %s (auth %v): got %d, want %d", tc.path, tc.mod != nil, got, tc.want)
		}
	}
}

func requireToken(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// The admin endpoint closes a keep-alive connection left idle, and one
// that never finishes its request (before: both were kept forever).
func TestAdminClosesIdleAndSlowConnections(t *testing.T) {
	t.Parallel()
	in := grpckittest.NewServer(t, nil, server.WithAdmin("127.0.0.1:0"), grpckit.WithAccessLog(false))
	addr := in.Server.AdminAddr().String()
	for _, tc := range []struct {
		name  string
		send  string
		limit time.Duration
	}{
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n", admin.IdleTimeout},
		{"unfinished request", "GET /healthz HTTP/1.1\r\nHost: adm", admin.ReadTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			bound := tc.limit + 30*time.Second
			_ = c.SetReadDeadline(time.Now().Add(bound))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v, want closed after %v", bound, tc.limit)
			}
		})
	}
}
