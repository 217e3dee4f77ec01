// Command addsvc is grpckit's one-process demo. It starts an embedded etcd
// (in a temporary directory) and three add-service servers on loopback that
// register in it, and a client that finds them through "etcd:///addsvc" and
// balances with p2c. Then, under a steady open-loop load of Sum calls, it
// runs phases and prints a table row after each (calls, status codes,
// p50/p99 latency, each server's share of the calls):
//
//   - steady: the calls spread over the three servers;
//   - s2-slow: s2 answers 10× slower, and its share drops;
//   - s3-failing, s3-healed: s3 fails every call with Unavailable; the
//     client retries them elsewhere, the balancer ejects s3, readmits it
//     once it heals, and it takes calls again;
//   - concat-failing, concat-healed: every server fails Concat; the
//     client's circuit breaker for Concat opens (calls fail at once without
//     being sent), then closes once the servers heal;
//   - rolling-restart: each server in turn deregisters, drains, stops and
//     is replaced by a new one on a new port, with no failed call;
//   - etcd-down: etcd stops for a few seconds and comes back; the client
//     keeps its last known servers, with no failed call.
//
// It then prints the add service's business metrics (package
// addservice: sums computed, concatenations, calls refused), read back
// from the registry the servers share and that the admin page's /metrics
// serves beside the gRPC series, shuts the servers down gracefully
// (deregistering first) and exits. It runs in about half a minute; it logs nothing unless -v.
//
// From the repository root (the examples are a module of their own, in
// examples/):
//
//	go -C examples run ./addsvc                   # plaintext, etcd
//	go -C examples run ./addsvc -v                # with every log line (Info and up)
//	go -C examples run ./addsvc -tls              # TLS with a throwaway certificate
//	go -C examples run ./addsvc -registry consul  # Consul (in-process, or -consul host:port)
//	go -C examples run ./addsvc -registry dnssrv  # DNS SRV (in-process DNS server)
//	go -C examples run ./addsvc -hold             # afterwards, keep the load and the admin page up until Ctrl-C
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
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
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
	"github.com/grpckit/grpckit/interceptors/breaker"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

func main() {
	var o options
	flag.BoolVar(&o.tls, "tls", false, "serve and call over TLS with a throwaway self-signed certificate (etcd registry)")
	flag.IntVar(&o.servers, "servers", 3, "how many servers to start, at least 3 (etcd registry)")
	registry := flag.String("registry", "etcd", "service discovery: etcd (embedded), consul or dnssrv")
	consulAddr := flag.String("consul", "", "with -registry consul: host:port of a Consul agent's HTTP API (default: an in-process one)")
	flag.StringVar(&o.admin, "admin", "127.0.0.1:0", "address of the admin page (etcd registry)")
	flag.BoolVar(&o.hold, "hold", false, "after the phases, keep everything running under load (and the admin page up) until Ctrl-C")
	flag.BoolVar(&o.verbose, "v", false, "log everything (Info and up) to stderr; by default nothing is logged")
	flag.Parse()
	var err error
	if *registry == "etcd" {
		o.log = os.Stderr
		err = run(os.Stdout, o)
	} else {
		err = discovery.Run(os.Stdout, *registry, *consulAddr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "addsvc:", err)
		os.Exit(1)
	}
}

// options are run's settings.
type options struct {
	tls     bool
	servers int
	admin   string
	hold    bool
	verbose bool
	log     io.Writer // where logs go (nil: discarded)
	short   bool      // only the steady phase (tests)
}

// run runs the demo, printing to w.
func run(w io.Writer, o options) (err error) {
	if o.servers < 3 {
		return errors.New("-servers must be at least 3")
	}
	if o.log == nil {
		o.log = io.Discard
	}
	level := slog.LevelError + 4 // quiet: the tables say what happens
	if o.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: level}))
	// The balancer logs ejections to slog.Default (gRPC builds it by name,
	// so it cannot be handed a logger).
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(logger)

	sopts := []server.Option{grpckit.WithInsecure()} // loopback; -tls replaces it
	copts := []client.Option{grpckit.WithInsecure()}
	if o.tls {
		pair, err := selfsigned.New()
		if err != nil {
			return err
		}
		sopts = append(sopts, grpckit.WithTLS(pair.Server))
		copts = []client.Option{grpckit.WithTLS(pair.Client)}
	}
	// One registry for every server: their series, the add service's
	// business metrics among them, add up across rolling restarts.
	reg := grpckit.NewRegistry()
	sopts = append(sopts, grpckit.WithLogger(logger), server.WithDrainDelay(drainDelay), grpckit.WithMetrics(reg))
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
	fmt.Fprintf(w, "etcd (embedded) listening on %s\n", registry.Endpoints()[0])

	// The admin page shows the servers, the client, its endpoints and
	// breakers, live (package admin).
	ah, err := admin.New(admin.WithLogger(logger))
	if err != nil {
		return err
	}
	as, err := ah.Listen(o.admin)
	if err != nil {
		return err
	}
	defer as.Close()
	fmt.Fprintf(w, "admin page: %s\n", as.URL())

	// Start the servers; each registers in etcd once it serves.
	c := newCluster(cli, o.servers, sopts, logger)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for i := range c.slots {
			if serr := c.stop(sctx, i); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	for i, s := range c.slots {
		if err := c.start(i); err != nil {
			return err
		}
		fmt.Fprintf(w, "server %s listening on %s (tls=%v)\n", s.name, s.addr, o.tls)
	}
	ctx := context.Background()
	if err := c.waitRegistered(ctx, o.servers, 10*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d servers registered in etcd\n", o.servers)

	// The client finds the servers through etcd and balances with p2c.
	// Sum is idempotent, so a call that fails with Unavailable is retried
	// (on another server, as a rule); every method has a circuit breaker.
	rb, err := etcd.NewBuilder(cli, etcd.WithLogger(logger))
	if err != nil {
		return err
	}
	bl := new(breakerLog)
	conn, err := client.New("etcd:///addsvc", append(copts,
		client.WithDialOptions(grpc.WithResolvers(rb)),
		client.WithBalancer(demoBalancer),
		client.WithIdempotent(addsvcv1.AddService_Sum_FullMethodName),
		client.WithBreaker(breaker.WithTimeout(breakerTimeout), onStateChange(breaker.WithOnStateChange, bl.record)),
		client.WithDefaultTimeout(2*time.Second))...)
	if err != nil {
		return err
	}
	defer conn.Close()
	add := addsvcv1.NewAddServiceClient(conn)
	fmt.Fprintf(w, "client: etcd:///addsvc, balancer p2c (ejection after %d failures in a row, for 1s, then 2s),\n"+
		"        Sum retried on Unavailable (idempotent), a circuit breaker per method (%d failures in a row, open %v)\n",
		5, breaker.DefaultThreshold, breakerTimeout)

	var p peer.Peer
	res, err := add.Sum(ctx, &addsvcv1.SumRequest{A: 1, B: 2}, grpc.Peer(&p))
	if err != nil {
		return fmt.Errorf("sum: %w", err)
	}
	fmt.Fprintf(w, "Sum(1, 2) = %d (served by %s)\n", res.GetV(), c.slots[c.slotOf(p.Addr.String())].name)
	_, err = add.Sum(ctx, &addsvcv1.SumRequest{A: 1 << 62, B: 1 << 62})
	fmt.Fprintf(w, "Sum(2^62, 2^62) fails as it should: %s: %s\n", status.Code(err), status.Convert(err).Message())
	_, err = add.Concat(ctx, &addsvcv1.ConcatRequest{A: strings.Repeat("a", addservice.DefaultMaxLen), B: "!"})
	fmt.Fprintf(w, "Concat of %d bytes fails as it should: %s: %s\n", addservice.DefaultMaxLen+1, status.Code(err), status.Convert(err).Message())

	d := &demo{w: w, c: c, l: newLoad(add, c), etcd: registry, target: conn.Target(), bl: bl}
	d.l.run()
	defer d.l.close() // before the connection closes
	if err := d.phases(ctx, o.short); err != nil {
		return err
	}
	if o.hold {
		fmt.Fprintln(w, "holding under steady load: the admin page stays up until Ctrl-C")
		d.l.begin("hold")
		hctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		<-hctx.Done()
		stop()
		d.l.finish()
	}
	line, err := business(reg)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, line)

	// Graceful shutdown: deregister, health NOT_SERVING, drain, GracefulStop.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for i := range c.slots {
		if err := c.stop(sctx, i); err != nil {
			return err
		}
	}
	left, err := c.registered(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "all servers shut down gracefully; %d registrations left in etcd\n", left)
	return nil
}

// business reads the add service's business metrics (package addservice)
// back from the servers' registry, as /metrics serves them, and spells
// them in a line.
func business(reg grpckit.Registry) (string, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return "", err
	}
	var sums, concats, overflow, tooLong float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "addsvc_sums_total":
				sums = m.GetCounter().GetValue()
			case "addsvc_concat_length_bytes":
				concats = float64(m.GetHistogram().GetSampleCount())
			case "addsvc_refused_total":
				for _, l := range m.GetLabel() {
					switch {
					case l.GetName() == "reason" && l.GetValue() == "overflow":
						overflow = m.GetCounter().GetValue()
					case l.GetName() == "reason" && l.GetValue() == "too_long":
						tooLong = m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return fmt.Sprintf("business metrics (addsvc_* on /metrics): %.0f sums, %.0f concatenations; refused: Sum %.0f (overflow), Concat %.0f (too long)",
		sums, concats, overflow, tooLong), nil
}
