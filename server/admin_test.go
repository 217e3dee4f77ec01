package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	channelzpb "google.golang.org/grpc/channelz/grpc_channelz_v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/internal/adminstate"
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

func TestGRPCAdminServesChannelz(t *testing.T) {
	backend := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithAccessLog(false))
	ops := grpckittest.NewServer(t, nil, server.WithGRPCAdmin(true), grpckit.WithAccessLog(false))
	// A client of the process, as a client-only job's would be.
	conn := grpckittest.Dial(t, "passthrough:///"+backend.Addr, grpckit.WithAccessLog(false), client.WithBalancer("pick_first"))
	if _, err := echov1.NewEchoServiceClient(conn).Echo(grpckittest.Context(t, 5*time.Second), &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}

	// What grpcurl list shows: the service is registered and reflected.
	if _, ok := ops.Server.GetServiceInfo()["grpc.channelz.v1.Channelz"]; !ok {
		t.Fatalf("services: got %v, want grpc.channelz.v1.Channelz", ops.Server.GetServiceInfo())
	}
	cz := ops.Dial(t, grpckit.WithAccessLog(false))
	czc := channelzpb.NewChannelzClient(cz)
	ctx := grpckittest.Context(t, 10*time.Second)
	servers, err := czc.GetServers(ctx, &channelzpb.GetServersRequest{})
	if err != nil {
		t.Fatalf("channelz GetServers: %v", err)
	}
	if len(servers.GetServer()) < 2 {
		t.Errorf("channelz GetServers: got %d servers, want at least the two of this test", len(servers.GetServer()))
	}
	// The client's channel is listed with the call it made.
	top, err := czc.GetTopChannels(ctx, &channelzpb.GetTopChannelsRequest{})
	if err != nil {
		t.Fatalf("channelz GetTopChannels: %v", err)
	}
	found := false
	for _, ch := range top.GetChannel() {
		if ch.GetData().GetTarget() == "passthrough:///"+backend.Addr && ch.GetData().GetCallsSucceeded() >= 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("channelz GetTopChannels: no channel to %s with a successful call among %d", backend.Addr, len(top.GetChannel()))
	}

	// Off by default.
	plain := grpckittest.NewServer(t, nil, grpckit.WithAccessLog(false))
	if _, ok := plain.Server.GetServiceInfo()["grpc.channelz.v1.Channelz"]; ok {
		t.Error("channelz registered without WithGRPCAdmin")
	}
}

func TestAdminShowsServerState(t *testing.T) {
	srv := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithAccessLog(false),
		server.WithRateLimit(rate.Every(time.Hour), 1))
	ec := echov1.NewEchoServiceClient(srv.Dial(t, grpckit.WithAccessLog(false), client.WithBreaker(breaker.WithThreshold(100))))
	ctx := grpckittest.Context(t, 5*time.Second)
	var codesSeen []codes.Code
	for range 3 {
		_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "x"})
		codesSeen = append(codesSeen, status.Code(err))
	}
	if want := []codes.Code{codes.OK, codes.ResourceExhausted, codes.ResourceExhausted}; !slices.Equal(codesSeen, want) {
		t.Fatalf("codes: got %v, want %v", codesSeen, want)
	}

	h := httptest.NewServer(srv.Server.AdminHandler())
	defer h.Close()
	var st adminstate.State
	getJSON(t, h.URL+"/debug/grpckit/state", &st)
	var me *adminstate.Server
	for i := range st.Servers {
		if slices.Contains(st.Servers[i].Addresses, srv.Addr) {
			me = &st.Servers[i]
		}
	}
	if me == nil {
		t.Fatalf("state: no server at %s in %+v", srv.Addr, st.Servers)
	}
	if me.Status != "SERVING" || !slices.Contains(me.Services, adminstate.Service{Name: "grpckit.echo.v1.EchoService", Status: "SERVING"}) {
		t.Errorf("status and services: got %s %+v, want SERVING with the echo service SERVING", me.Status, me.Services)
	}
	if me.Calls.Done != 3 || me.Calls.Failed != 2 || me.Calls.InFlight != 0 {
		t.Errorf("calls: got %+v, want 3 done, 2 failed, none in flight", me.Calls)
	}
	if len(me.Calls.Recent) != 2 || me.Calls.Recent[0].Code != "ResourceExhausted" ||
		me.Calls.Recent[0].Method != "/grpckit.echo.v1.EchoService/Echo" || me.Calls.Recent[0].Peer == "" {
		t.Errorf("recent errors: got %+v, want 2 ResourceExhausted on Echo with the peer", me.Calls.Recent)
	}
	if len(me.Limiters) != 1 || me.Limiters[0].RejectedRate != 2 {
		t.Errorf("limiters: got %+v, want one that rejected 2 calls", me.Limiters)
	}
	if len(st.Clients) == 0 || st.Process.PID == 0 || st.Process.Goroutines == 0 {
		t.Errorf("state: got %d clients, process %+v, want this test's client and the process", len(st.Clients), st.Process)
	}

	// A server that stopped leaves the page.
	srv.Server.Close()
	getJSON(t, h.URL+"/debug/grpckit/state", &st)
	for _, s := range st.Servers {
		if slices.Contains(s.Addresses, srv.Addr) {
			t.Errorf("state after Close: server %s still listed", srv.Addr)
		}
	}
}
