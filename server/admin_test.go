package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/internal/testsrv"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

// staticSource lists fixed endpoints and keeps them until the resolver
// closes.
type staticSource map[string]resolver.Endpoint

func (s staticSource) Watch(ctx context.Context, _ resolver.Target, u resolver.Updater) error {
	u.Replace(s)
	<-ctx.Done()
	return nil
}

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
	backend := testsrv.Start(t, server.WithAccessLog(false))
	b, err := resolver.NewBuilder("admintest", staticSource{"a": {Addr: backend.Addr, Zone: "z1"}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.New("admintest:///echo", client.WithInsecure(), client.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ec := echov1.NewEchoServiceClient(conn)
	for range 3 {
		if _, err := ec.Echo(testsrv.Ctx(t, 5*time.Second), &echov1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}

	adm := testsrv.Start(t, server.WithAdmin("127.0.0.1:0"), server.WithAccessLog(false))
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
