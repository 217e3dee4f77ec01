package server_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/wait"
	"github.com/grpckit/grpckit/server"
)

// fakeRegistrar records what the server asks of it, and the health status
// the server reported at that moment.
type fakeRegistrar struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	events []string
	status func() healthpb.HealthCheckResponse_ServingStatus
	err    error
}

func (f *fakeRegistrar) record(ev string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev+":"+f.status().String())
}

func (f *fakeRegistrar) Register(_ context.Context, addr string) error {
	if f.err != nil {
		return f.err
	}
	// Like a real registrar, return at once and work in the background: the
	// status check goes over the network, to the accept loop that Serve
	// starts after Register returns.
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.record("register " + addr)
	}()
	return nil
}

func (f *fakeRegistrar) Deregister(context.Context) error {
	f.wg.Wait()
	f.record("deregister")
	return nil
}

func (f *fakeRegistrar) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func TestRegistrarLifecycle(t *testing.T) {
	reg := &fakeRegistrar{}
	srv, err := server.New(grpckit.WithInsecure(), server.WithRegistrar(reg), server.WithDrainDelay(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	conn := grpckittest.Dial(t, "passthrough:///"+addr)
	reg.status = func() healthpb.HealthCheckResponse_ServingStatus {
		// The in-process health server answers without the network.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return r.GetStatus()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	wait.For(t, 5*time.Second, "registration", func() bool { return len(reg.Events()) == 1 })
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve = %v, want ErrServerClosed", err)
	}
	want := []string{"register " + addr + ":SERVING", "deregister:SERVING"}
	if got := reg.Events(); !slices.Equal(got, want) {
		t.Fatalf("registrar saw %v, want %v (register while SERVING, deregister before NOT_SERVING)", got, want)
	}
}

func TestRegistrarError(t *testing.T) {
	reg := &fakeRegistrar{err: errors.New("bad endpoint"), status: func() healthpb.HealthCheckResponse_ServingStatus { return 0 }}
	srv, err := server.New(grpckit.WithInsecure(), server.WithRegistrar(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(lis); err == nil || !errors.Is(err, reg.err) {
		t.Fatalf("Serve = %v, want the registrar's error", err)
	}
}
