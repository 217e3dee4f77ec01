package grpckittest_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/server"
)

// testService is what a test of yours does with the kit; t is its
// *testing.T. Everything it starts stops when the test ends.
func testService(t testing.TB) {
	quiet := grpckit.WithAccessLog(false)
	ctx := grpckittest.Context(t, 10*time.Second)

	// A backend whose next call fails, on loopback TCP, found through a
	// source the test feeds.
	backend := &grpckittest.Backend{}
	backend.Faults.Next(1, grpckittest.Fault{Code: codes.Unavailable})
	srv := grpckittest.NewServer(t, backend.Register, quiet)
	src := &grpckittest.Source{}
	b, err := resolver.NewBuilder("test", src)
	if err != nil {
		t.Fatalf("resolver.NewBuilder: %v", err)
	}
	conn := grpckittest.Dial(t, "test:///echo", quiet, client.WithDialOptions(grpc.WithResolvers(b)))
	src.Replace(resolver.Endpoint{Addr: srv.Addr})
	echo := echov1.NewEchoServiceClient(conn)
	for range 2 {
		res, err := echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
		fmt.Printf("echo: %q %v\n", res.GetMessage(), status.Code(err))
	}
	fmt.Println("backend calls:", backend.Faults.Calls())

	// Faults in front of any service, here grpc's health service, on an
	// in-memory server.
	faults := &grpckittest.Faults{}
	faults.Always(grpckittest.Fault{Code: codes.PermissionDenied})
	mem := grpckittest.NewBufconnServer(t, nil, quiet,
		server.WithUnaryInterceptor(server.SlotUser, faults.UnaryServerInterceptor()))
	_, err = healthpb.NewHealthClient(mem.Dial(t, quiet)).Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println("health:", status.Code(err))
}

func Example() {
	t := &exampleT{}
	defer t.cleanup()
	testService(t)
	// Output:
	// echo: "" Unavailable
	// echo: "hi" OK
	// backend calls: 2
	// health: PermissionDenied
}

// exampleT stands in for the *testing.T an Example does not have: it runs
// the cleanups when the example ends. In a test, pass t.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()          {}
func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) {
	fmt.Printf("error: "+format+"\n", args...)
}

func (t *exampleT) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
