package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/hedge"
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

// TestAdminStateHedging: a client that hedges shows, in the JSON state,
// the hedge it sent to a slow backend and won, by method; a client that
// does not hedge has no "hedging".
func TestAdminStateHedging(t *testing.T) {
	// The hedged call's first attempt hangs and its hedge answers, told
	// apart by the attempt, not by which reaches the server first: the
	// first attempt is the one that writes the caller's reply (marked
	// outside the hedger, at SlotTimeout, and tagged inside it, at
	// SlotUser).
	type callerReply struct{}
	mark := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(context.WithValue(ctx, callerReply{}, reply), method, req, reply, cc, opts...)
	}
	tag := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if ctx.Value(callerReply{}) == reply {
			ctx = metadata.AppendToOutgoingContext(ctx, "attempt", "first")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	bk := &grpckittest.Backend{Handler: func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("attempt")) > 0 {
			<-ctx.Done() // cancelled when the hedge wins
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}}
	srv := grpckittest.NewServer(t, bk.Register, grpckit.WithAccessLog(false))
	quiet := grpckit.WithAccessLog(false)
	hedged := srv.Dial(t, quiet, client.WithHedging(hedge.WithMethods(echoMethod), hedge.WithDelay(20*time.Millisecond)),
		client.WithUnaryInterceptor(client.SlotTimeout, mark), client.WithUnaryInterceptor(client.SlotUser, tag))
	plain := srv.Dial(t, quiet)
	ctx := grpckittest.Context(t, 10*time.Second)
	if _, err := echov1.NewEchoServiceClient(hedged).Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := echov1.NewEchoServiceClient(plain).Echo(ctx, &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}

	h, err := admin.New()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/grpckit/state", nil))
	var st struct {
		Clients []struct {
			Target  string           `json:"target"`
			Hedging *json.RawMessage `json:"hedging"`
		} `json:"clients"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("state: %v\n%s", err, rec.Body)
	}
	var got []*json.RawMessage
	for _, c := range st.Clients {
		if c.Target == hedged.Target() {
			got = append(got, c.Hedging)
		}
	}
	if len(got) != 2 {
		t.Fatalf("clients of %s: got %d, want 2", hedged.Target(), len(got))
	}
	if (got[0] == nil) == (got[1] == nil) {
		t.Fatalf("hedging: got %v and %v, want it on the hedging client only", got[0], got[1])
	}
	raw := got[0]
	if raw == nil {
		raw = got[1]
	}
	var hs hedge.State
	if err := json.Unmarshal(*raw, &hs); err != nil {
		t.Fatalf("hedging: %v\n%s", err, *raw)
	}
	want := hedge.MethodState{Method: echoMethod, Delay: 20 * time.Millisecond, Calls: 1, Sent: 1, Won: 1}
	if hs.Sent != 1 || hs.Won != 1 || len(hs.Methods) != 1 || hs.Methods[0] != want {
		t.Errorf("hedging: got %s, want 1 hedge sent and won, methods [%+v]", *raw, want)
	}

	// The page, rendered on the server, has the hedged method's row.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if row := `<tr data-hedge-method="` + echoMethod + `" data-calls="1" data-sent="1" data-won="1">`; !strings.Contains(rec.Body.String(), row) {
		t.Errorf("page: no %s in\n%s", row, rec.Body)
	}
}
