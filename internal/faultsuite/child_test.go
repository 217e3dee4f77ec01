package faultsuite

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

// The child: a server process of the suite, started by re-running the test
// binary with envChild set. It serves the echo service with a grpckit
// server that registers in etcd, takes fault modes on a small HTTP control
// endpoint, prints "READY <grpc address> <control address>" once it serves,
// and shuts down gracefully on SIGTERM.
const (
	envChild     = "GRPCKIT_FAULTSUITE_CHILD"
	envEtcd      = "GRPCKIT_FAULTSUITE_ETCD"
	envPrefix    = "GRPCKIT_FAULTSUITE_PREFIX"
	envAdvertise = "GRPCKIT_FAULTSUITE_ADVERTISE"
)

// Timing of the servers.
const (
	baseLatency = 2 * time.Millisecond   // each call's work
	drainDelay  = 500 * time.Millisecond // Shutdown keeps serving this long after deregistering
)

// leaseTTL is the registrations' lease for a suite whose faults are held
// for hold. A frozen server (SIGSTOP) must keep its registration through
// the freeze, so that the fault tests the balancer, not discovery: etcd's
// client renews a lease every TTL/3, checked every 500 ms, so the lease
// can have only 2/3·TTL − 0.5 s left when the freeze starts. The TTL
// keeps that 1.5 s (for a loaded machine to run the child again and the
// renewal to reach etcd) above hold: 6 s for the short mode's 2 s, where
// 3 s left the lease as little as 1.5 s and it could expire mid-freeze.
// A longer TTL only keeps a SIGKILLed server's entry longer, which the
// balancer handles as it handles a dead address (no check counts them).
func leaseTTL(hold time.Duration) time.Duration {
	return (3*(hold+2*time.Second)/2 + time.Second - 1).Truncate(time.Second)
}

// modes are the faults a child's backend can be switched to.
var modes = map[string]grpckittest.Fault{
	"normal": {Delay: baseLatency},
	"slow":   {Delay: 10 * baseLatency},
	"hang":   {Hang: true},
	"errors": {Code: codes.Unavailable},
	"panic":  {Panic: true},
}

func child() int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int {
		logger.Error("fault suite child failed", slog.String("error", err.Error()))
		return 1
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Getenv(envEtcd), ","),
		DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fail(err)
	}
	defer cli.Close()
	ropts := []etcd.RegistrarOption{etcd.WithTTL(leaseTTL(suiteMode().hold)), etcd.WithLogger(logger), etcd.WithPrefix(os.Getenv(envPrefix))}
	if a := os.Getenv(envAdvertise); a != "" {
		ropts = append(ropts, etcd.WithAddress(a))
	}
	reg, err := etcd.NewRegistrar(cli, service, ropts...)
	if err != nil {
		return fail(err)
	}
	b := &grpckittest.Backend{}
	b.Faults.Always(modes["normal"])
	srv, err := server.New(grpckit.WithInsecure(), grpckit.WithLogger(logger), grpckit.WithAccessLog(false),
		server.WithRegistrar(reg), server.WithDrainDelay(drainDelay))
	if err != nil {
		return fail(err)
	}
	b.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mode/{mode}", func(w http.ResponseWriter, r *http.Request) {
		f, ok := modes[r.PathValue("mode")]
		if !ok {
			http.Error(w, "no such mode", http.StatusNotFound)
			return
		}
		b.Faults.Always(f)
	})
	clis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	ctl := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		_ = ctl.Serve(clis)
	}()
	defer func() { _ = ctl.Close(); <-ctlDone }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	fmt.Printf("READY %s %s\n", lis.Addr(), clis.Addr())
	select {
	case <-sigs:
	case err := <-served:
		return fail(fmt.Errorf("serve: %w", err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fail(fmt.Errorf("shutdown: %w", err))
	}
	<-served
	return 0
}
