// Command addsvc is grpckit's one-process demo: it starts an embedded etcd in
// a temporary directory and three add-service servers on loopback that
// register in it (etcd.NewRegistrar), calls them through the client builder
// with an "etcd:///addsvc" target and grpckit's default p2c balancer, prints
// what happens, shuts the servers down gracefully (deregistering first) and
// exits.
//
// From the repository root (the examples are a module of their own, in
// examples/):
//
//	go -C examples run ./addsvc                   # plaintext, etcd
//	go -C examples run ./addsvc -tls              # TLS with a throwaway certificate
//	go -C examples run ./addsvc -registry consul  # Consul (in-process, or -consul host:port)
//	go -C examples run ./addsvc -registry dnssrv  # DNS SRV (in-process DNS server)
//	go -C examples run ./addsvc -hold             # keep the admin page up until Ctrl-C
//
// It prints the URL of its admin page (package admin), which shows the
// servers, the client, its endpoints and breakers live.
//
// See cmd/addsvc-server and cmd/addsvc-client for the two halves as separate
// programs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	"github.com/grpckit/grpckit/examples/addsvc/discovery"
	"github.com/grpckit/grpckit/examples/internal/embedetcd"
	"github.com/grpckit/grpckit/examples/internal/selfsigned"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

func main() {
	useTLS := flag.Bool("tls", false, "serve and call over TLS with a throwaway self-signed certificate (etcd registry)")
	n := flag.Int("servers", 3, "how many servers to start (etcd registry)")
	registry := flag.String("registry", "etcd", "service discovery: etcd (embedded), consul or dnssrv")
	consulAddr := flag.String("consul", "", "with -registry consul: host:port of a Consul agent's HTTP API (default: an in-process one)")
	adminAddr := flag.String("admin", "127.0.0.1:0", "address of the admin page (etcd registry)")
	hold := flag.Bool("hold", false, "after the calls, keep everything running (and the admin page up) until Ctrl-C")
	flag.Parse()
	var err error
	if *registry == "etcd" {
		err = run(*useTLS, *n, *adminAddr, *hold)
	} else {
		err = discovery.Run(os.Stdout, *registry, *consulAddr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "addsvc:", err)
		os.Exit(1)
	}
}

func run(useTLS bool, n int, adminAddr string, hold bool) error {
	if n < 1 {
		return errors.New("-servers must be at least 1")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sopts := []server.Option{grpckit.WithInsecure()} // loopback; -tls replaces it
	copts := []client.Option{grpckit.WithInsecure()}
	if useTLS {
		pair, err := selfsigned.New()
		if err != nil {
			return err
		}
		sopts = append(sopts, grpckit.WithTLS(pair.Server))
		copts = []client.Option{grpckit.WithTLS(pair.Client)}
	}
	sopts = append(sopts, grpckit.WithLogger(logger), server.WithDrainDelay(100*time.Millisecond))
	copts = append(copts, grpckit.WithLogger(logger))

	// Start etcd, embedded, with its data in a temporary directory.
	dir, err := os.MkdirTemp("", "addsvc-etcd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	registry, err := embedetcd.Start(dir)
	if err != nil {
		return err
	}
	defer registry.Close()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   registry.Endpoints(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return err
	}
	defer cli.Close()
	fmt.Printf("etcd listening on %s\n", registry.Endpoints()[0])

	// The admin page shows the servers, the client, its endpoints and
	// breakers, live (package admin).
	ah, err := admin.New(admin.WithLogger(logger))
	if err != nil {
		return err
	}
	as, err := ah.Listen(adminAddr)
	if err != nil {
		return err
	}
	defer as.Close()
	fmt.Printf("admin page: %s\n", as.URL())

	// Start the servers; each registers in etcd once it serves.
	var servers []*server.Server
	served := make(chan error, n)
	for range n {
		reg, err := etcd.NewRegistrar(cli, "addsvc", etcd.WithLogger(logger))
		if err != nil {
			return err
		}
		srv, err := server.New(append(sopts, server.WithRegistrar(reg))...)
		if err != nil {
			return err
		}
		addsvcv1.RegisterAddServiceServer(srv, addservice.New(0))
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		go func() { served <- srv.Serve(lis) }()
		servers = append(servers, srv)
		fmt.Printf("server listening on %s (tls=%v), registering as %s\n", lis.Addr(), useTLS, reg.Key())
	}
	ctx := context.Background()
	if err := waitRegistered(ctx, cli, n); err != nil {
		return err
	}

	// The client finds the servers through etcd.
	rb, err := etcd.NewBuilder(cli, etcd.WithLogger(logger))
	if err != nil {
		return err
	}
	conn, err := client.New("etcd:///addsvc", append(copts,
		client.WithDialOptions(grpc.WithResolvers(rb)),
		client.WithDefaultTimeout(2*time.Second))...)
	if err != nil {
		return err
	}
	defer conn.Close()
	add := addsvcv1.NewAddServiceClient(conn)

	for i := range int64(2 * n) {
		var p peer.Peer
		res, err := add.Sum(ctx, &addsvcv1.SumRequest{A: i, B: 10 * i}, grpc.Peer(&p))
		if err != nil {
			return fmt.Errorf("sum: %w", err)
		}
		fmt.Printf("Sum(%d, %d) = %d   (served by %s)\n", i, 10*i, res.GetV(), p.Addr)
	}
	cres, err := add.Concat(ctx, &addsvcv1.ConcatRequest{A: "grpc", B: "kit"})
	if err != nil {
		return fmt.Errorf("concat: %w", err)
	}
	fmt.Printf("Concat(%q, %q) = %q\n", "grpc", "kit", cres.GetV())

	_, err = add.Sum(ctx, &addsvcv1.SumRequest{A: 1 << 62, B: 1 << 62})
	fmt.Printf("Sum(2^62, 2^62) fails as it should: %s: %s\n", status.Code(err), status.Convert(err).Message())

	if hold {
		fmt.Println("holding: the admin page stays up until Ctrl-C")
		hctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		<-hctx.Done()
		stop()
	}

	// Graceful shutdown: health NOT_SERVING, drain, GracefulStop.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	for range servers {
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	left, err := cli.Get(ctx, etcd.DefaultPrefix+"addsvc/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	fmt.Printf("all servers shut down gracefully; %d registrations left in etcd\n", left.Count)
	return nil
}

// waitRegistered waits until n servers are registered in etcd.
func waitRegistered(ctx context.Context, cli *clientv3.Client, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := cli.Get(ctx, etcd.DefaultPrefix+"addsvc/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count == int64(n) {
			fmt.Printf("%d servers registered in etcd\n", n)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("servers not registered in etcd: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
