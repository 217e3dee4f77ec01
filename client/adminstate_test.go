package client_test

import (
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/internal/adminstate"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
)

// TestAdminStateOfClients: two clients of the same target each show their
// own balancer's endpoints, breakers, retry budget and recent errors.
func TestAdminStateOfClients(t *testing.T) {
	a := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithAccessLog(false))
	bk := new(grpckittest.Backend)
	b := grpckittest.NewServer(t, bk.Register, grpckit.WithAccessLog(false))
	srcA, srcB := &grpckittest.Source{}, &grpckittest.Source{}
	srcA.Replace(resolver.Endpoint{Addr: a.Addr})
	srcB.Replace(resolver.Endpoint{Addr: b.Addr})
	rbA, err := resolver.NewBuilder("admina", srcA)
	if err != nil {
		t.Fatal(err)
	}
	rbB, err := resolver.NewBuilder("admina", srcB) // same scheme and target, other endpoint
	if err != nil {
		t.Fatal(err)
	}
	quiet := grpckit.WithAccessLog(false)
	connA := grpckittest.Dial(t, "admina:///echo", quiet, client.WithDialOptions(grpc.WithResolvers(rbA)))
	connB := grpckittest.Dial(t, "admina:///echo", quiet, client.WithDialOptions(grpc.WithResolvers(rbB)),
		client.WithIdempotent("/grpckit.echo.v1.EchoService/Echo"), client.WithBreaker(breaker.WithThreshold(2)))
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := echov1.NewEchoServiceClient(connA).Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	bk.Faults.Next(100, grpckittest.Fault{Code: codes.Unavailable})
	for range 3 {
		_, _ = echov1.NewEchoServiceClient(connB).Echo(ctx, &echov1.EchoRequest{Message: "x"})
	}

	h, err := admin.New()
	if err != nil {
		t.Fatal(err)
	}
	var ca, cb adminstate.Client
	wait.For(t, 10*time.Second, "both clients' calls counted", func() bool {
		ca, cb = adminstate.Client{}, adminstate.Client{}
		for _, c := range h.State().Clients {
			if c.Target != "admina:///echo" {
				continue
			}
			for _, e := range c.Endpoints {
				switch e.Addr {
				case a.Addr:
					ca = c
				case b.Addr:
					cb = c
				}
			}
		}
		return ca.Calls.Done == 1 && cb.Calls.Done == 3 && len(ca.Endpoints) == 1 && len(cb.Endpoints) == 1 &&
			ca.Endpoints[0].Calls == 1 && cb.Endpoints[0].Failures >= 1
	})
	if ca.ID == cb.ID || ca.State != "READY" || ca.Balancer != "p2c" {
		t.Errorf("clients: got ids %d and %d, A %s %s, want two ids, A READY p2c", ca.ID, cb.ID, ca.State, ca.Balancer)
	}
	if ca.Calls.Failed != 0 || cb.Calls.Failed != 3 || len(cb.Calls.Recent) != 3 || cb.Calls.Recent[0].Code == "" {
		t.Errorf("failures: got A %+v, B %+v, want none on A, 3 recent on B", ca.Calls, cb.Calls)
	}
	if ca.Retry != nil || cb.Retry == nil {
		t.Errorf("retry budgets: got A %v, B %v, want none on A, B's", ca.Retry, cb.Retry)
	}
	if len(cb.Breakers) != 1 || cb.Breakers[0].State != "open" || cb.Breakers[0].Rejected == 0 {
		t.Errorf("B's breakers: got %+v, want one open that rejected calls", cb.Breakers)
	}
	if ca.Resolver == nil || ca.Resolver.Scheme != "admina" || !ca.Resolver.Answered {
		t.Errorf("A's resolver: got %+v, want the admina resolver, answered", ca.Resolver)
	}

	// A closed client leaves the page.
	connA.Close()
	for _, c := range h.State().Clients {
		if c.ID == ca.ID {
			t.Errorf("closed client %d still listed", ca.ID)
		}
	}
}
