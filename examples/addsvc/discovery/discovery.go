// Package discovery is the Consul and DNS SRV half of the addsvc demo: it
// runs three addsvc servers and a client that finds them through Consul or
// DNS SRV.
//
//	go -C examples run ./addsvc -registry consul                       # in-process Consul (examples/internal/fakeconsul)
//	go -C examples run ./addsvc -registry consul -consul 127.0.0.1:8500 # a real agent
//	go -C examples run ./addsvc -registry dnssrv                       # in-process DNS server (examples/internal/fakedns)
//
// With Consul, each server registers itself with a TTL check
// (consul.NewRegistrar, server.WithRegistrar) and the client watches the
// service with blocking queries (consul.NewBuilder). One server then shuts
// down: it deregisters first, and the client stops using it without a
// failed call. With DNS SRV, two servers are published at priority 10 and a
// backup at priority 20; the client uses the first two, then falls back to
// the backup when they disappear from DNS.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	"github.com/grpckit/grpckit/examples/internal/fakeconsul"
	"github.com/grpckit/grpckit/examples/internal/fakedns"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/resolver/consul"
	"github.com/grpckit/grpckit/resolver/dnssrv"
	"github.com/grpckit/grpckit/server"
)

// Run runs the demo with registry "consul" or "dnssrv", writing what
// happens to out. consulAddr names a real Consul agent's HTTP API; empty
// means an in-process one.
func Run(out io.Writer, registry, consulAddr string) error {
	switch registry {
	case "consul":
		return runConsul(out, consulAddr)
	case "dnssrv":
		return runDNSSRV(out)
	default:
		return fmt.Errorf("unknown registry %q (want consul or dnssrv)", registry)
	}
}

// instance is one running addsvc server.
type instance struct {
	srv   *server.Server
	addr  string
	calls atomic.Int64
	done  chan error
}

// start serves addsvc on 127.0.0.1 with opts.
func start(opts ...server.Option) (*instance, error) {
	in := &instance{done: make(chan error, 1)}
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		in.calls.Add(1)
		return h(ctx, req)
	}
	srv, err := server.New(append([]server.Option{
		grpckit.WithInsecure(), // loopback; a TLS option in opts wins
		grpckit.WithAccessLog(false),
		server.WithUnaryInterceptor(server.SlotUser, count),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	addsvcv1.RegisterAddServiceServer(srv, addservice.New(0))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	in.srv, in.addr = srv, lis.Addr().String()
	go func() { in.done <- srv.Serve(lis) }()
	return in, nil
}

func (in *instance) stop() {
	_ = in.srv.Close()
	<-in.done
}

// sum makes n calls and returns how many failed.
func sum(c addsvcv1.AddServiceClient, n int) int {
	failed := 0
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := c.Sum(ctx, &addsvcv1.SumRequest{A: int64(i), B: 1}); err != nil {
			failed++
		}
		cancel()
	}
	return failed
}

// waitServed calls until every instance in ins has served a call.
func waitServed(c addsvcv1.AddServiceClient, ins ...*instance) error {
	deadline := time.Now().Add(10 * time.Second)
	base := make([]int64, len(ins))
	for i, in := range ins {
		base[i] = in.calls.Load()
	}
	for time.Now().Before(deadline) {
		sum(c, 5)
		all := true
		for i, in := range ins {
			all = all && in.calls.Load() > base[i]
		}
		if all {
			return nil
		}
	}
	return errors.New("servers not discovered in 10s")
}

func reset(ins []*instance) {
	for _, in := range ins {
		in.calls.Store(0)
	}
}

func report(out io.Writer, ins []*instance, failed int) {
	for i, in := range ins {
		fmt.Fprintf(out, "  server %d (%s): %d calls\n", i+1, in.addr, in.calls.Swap(0))
	}
	fmt.Fprintf(out, "  failed calls: %d\n", failed)
}

func runConsul(out io.Writer, addr string) error {
	if addr == "" {
		agent, err := fakeconsul.New("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer agent.Close()
		addr = agent.Addr()
	}
	cfg := api.DefaultConfig()
	cfg.Address = addr
	apiClient, err := api.NewClient(cfg)
	if err != nil {
		return err
	}

	// Servers: each registers with a TTL check once it is serving.
	var ins []*instance
	for range 3 {
		reg, err := consul.NewRegistrar(apiClient, "addsvc", consul.WithTags("v1"), consul.WithTTL(3*time.Second))
		if err != nil {
			return err
		}
		in, err := start(server.WithRegistrar(reg), server.WithDrainDelay(300*time.Millisecond))
		if err != nil {
			return err
		}
		defer in.stop()
		ins = append(ins, in)
	}

	// Registration runs in the background; wait for it, so that the demo's
	// first calls do not meet an empty service.
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _, err := apiClient.Health().Service("addsvc", "v1", true, nil)
		if err == nil && len(entries) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("servers not registered in 10s (last error: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Client: watches the service's passing instances.
	b, err := consul.NewBuilder(apiClient)
	if err != nil {
		return err
	}
	conn, err := client.New("consul:///addsvc?tag=v1", grpckit.WithInsecure(), grpckit.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := addsvcv1.NewAddServiceClient(conn)
	if err := waitServed(c, ins...); err != nil {
		return err
	}
	reset(ins)
	fmt.Fprintf(out, "consul at %s: 3 servers registered\n", addr)
	report(out, ins, sum(c, 90))

	// Shutdown deregisters first, then drains: no call fails.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ins[2].srv.Shutdown(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "server 3 shut down (deregistered, drained)")
	report(out, ins, sum(c, 90))
	return nil
}

func runDNSSRV(out io.Writer) error {
	dns, err := fakedns.New()
	if err != nil {
		return err
	}
	defer dns.Close()

	var ins []*instance
	for range 3 {
		in, err := start()
		if err != nil {
			return err
		}
		defer in.stop()
		ins = append(ins, in)
	}
	port := func(in *instance) uint16 {
		_, p, _ := net.SplitHostPort(in.addr)
		n, _ := strconv.Atoi(p)
		return uint16(n)
	}
	const name = "_grpc._tcp.addsvc.example"
	dns.SetSRV(name,
		fakedns.SRV{Priority: 10, Weight: 3, Port: port(ins[0]), Target: "a.addsvc.example", TTL: 1},
		fakedns.SRV{Priority: 10, Weight: 1, Port: port(ins[1]), Target: "b.addsvc.example", TTL: 1},
		fakedns.SRV{Priority: 20, Weight: 1, Port: port(ins[2]), Target: "backup.addsvc.example", TTL: 1})
	dns.SetHost("a.addsvc.example", "127.0.0.1")
	dns.SetHost("b.addsvc.example", "127.0.0.1")
	dns.SetHost("backup.addsvc.example", "127.0.0.1")

	// The authority names the DNS server; without one, /etc/resolv.conf's.
	b, err := dnssrv.NewBuilder(dnssrv.WithRefresh(100*time.Millisecond, time.Minute))
	if err != nil {
		return err
	}
	conn, err := client.New("dnssrv://"+dns.Addr()+"/"+name, grpckit.WithInsecure(), grpckit.WithAccessLog(false),
		client.WithDialOptions(grpc.WithResolvers(b)))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := addsvcv1.NewAddServiceClient(conn)
	if err := waitServed(c, ins[0], ins[1]); err != nil {
		return err
	}
	reset(ins)
	fmt.Fprintf(out, "dns at %s: priority 10 = servers 1, 2; priority 20 = server 3\n", dns.Addr())
	report(out, ins, sum(c, 90))

	dns.SetHost("a.addsvc.example")
	dns.SetHost("b.addsvc.example")
	if err := waitServed(c, ins[2]); err != nil {
		return err
	}
	sum(c, 10) // let the old connections go
	reset(ins)
	fmt.Fprintln(out, "priority 10 targets removed from DNS: falling back to priority 20")
	report(out, ins, sum(c, 90))
	return nil
}
