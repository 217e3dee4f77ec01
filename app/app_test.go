package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/app"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/etcdtest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver/etcd"
	"github.com/grpckit/grpckit/server"
)

const (
	envChild  = "GRPCKIT_APP_CHILD"
	envEtcd   = "GRPCKIT_APP_ETCD"
	envPrefix = "GRPCKIT_APP_PREFIX"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(child())
	}
	goleak.VerifyTestMain(m)
}

// child is a service as a user writes it with package app: a grpckit
// server registered in etcd, run by app.Run until SIGTERM.
func child() int {
	cfg, err := app.Load("child", []string{"-addr", "127.0.0.1:0", "-admin-addr=", "-drain-delay", "500ms"}, nil, os.Stderr)
	if err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(os.Getenv(envEtcd), ","), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return 1
	}
	defer cli.Close()
	reg, err := etcd.NewRegistrar(cli, "apptest", etcd.WithPrefix(os.Getenv(envPrefix)), etcd.WithLogger(logger))
	if err != nil {
		return 1
	}
	srv, err := server.New(grpckit.WithInsecure(), grpckit.WithLogger(logger), grpckit.WithAccessLog(false),
		server.WithRegistrar(reg), server.WithDrainDelay(cfg.DrainDelay))
	if err != nil {
		return 1
	}
	b := &grpckittest.Backend{}
	b.Faults.Always(grpckittest.Fault{Delay: 2 * time.Millisecond})
	b.Register(srv)
	err = app.Run(context.Background(), cfg, app.WithServer(srv, ""), app.WithLogger(logger),
		app.WithReady(func(a app.Addrs) { fmt.Printf("READY %s\n", a.GRPC[0]) }))
	if err != nil {
		logger.Error("run", slog.String("error", err.Error()))
		return 1
	}
	return 0
}

type proc struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	err    error
}

func startChild(t *testing.T, e *etcdtest.TestEtcd) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envEtcd+"="+strings.Join(e.Endpoints(), ","), envPrefix+"="+e.Prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	l := <-line
	if !strings.HasPrefix(l, "READY ") {
		t.Fatalf("child did not start: %q", l)
	}
	p.addr = strings.TrimPrefix(l, "READY ")
	return p
}

// TestSIGTERMCostsNoCall: two services run by app.Run as processes, a
// client under load through etcd; SIGTERM to one loses no call.
func TestSIGTERMCostsNoCall(t *testing.T) {
	e := etcdtest.StartTestEtcd(t)
	a, b := startChild(t, e), startChild(t, e)
	rb, err := etcd.NewBuilder(e.Client(t), etcd.WithPrefix(e.Prefix), etcd.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	conn := grpckittest.Dial(t, "etcd:///apptest", grpckit.WithAccessLog(false), client.WithDialOptions(grpc.WithResolvers(rb)))
	ec := echov1.NewEchoServiceClient(conn)

	var (
		mu       sync.Mutex
		byPeer   = map[string]int{}
		failures []error
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for range 4 { // closed-loop load, four callers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var p peer.Peer
				_, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "x"}, grpc.Peer(&p))
				cancel()
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					byPeer[p.Addr.String()]++
				}
				mu.Unlock()
			}
		}()
	}
	calls := func(addr string) int { mu.Lock(); defer mu.Unlock(); return byPeer[addr] }
	wait.For(t, 20*time.Second, "both services get calls", func() bool { return calls(a.addr) > 20 && calls(b.addr) > 20 })

	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	afterA := calls(b.addr)
	wait.For(t, 20*time.Second, "b serves on", func() bool { return calls(b.addr) > afterA+100 })
	stop.Store(true)
	wg.Wait()
	if a.err != nil {
		t.Errorf("service after SIGTERM: %v, want exit status 0", a.err)
	}
	if len(failures) > 0 {
		t.Errorf("failed calls across the SIGTERM: got %d (first: %v), want 0", len(failures), failures[0])
	}
	t.Logf("calls: %d on the stopped service, %d on the other", calls(a.addr), calls(b.addr))
}

func config(t *testing.T) app.Config {
	t.Helper()
	c, err := app.Load("t", []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-drain-delay", "0s"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestRunServesUntilCancelled(t *testing.T) {
	srv, err := server.New(grpckit.WithInsecure(), grpckit.WithAccessLog(false))
	if err != nil {
		t.Fatal(err)
	}
	new(grpckittest.Backend).Register(srv)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan app.Addrs, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello")) })
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, config(t), app.WithServer(srv, ""), app.WithHTTP(h, "127.0.0.1:0"), app.WithLogger(quiet()),
			app.WithReady(func(a app.Addrs) { addrs <- a }))
	}()
	a := <-addrs
	conn := grpckittest.Dial(t, "passthrough:///"+a.GRPC[0].String(), grpckit.WithAccessLog(false))
	if _, err := echov1.NewEchoServiceClient(conn).Echo(grpckittest.Context(t, 5*time.Second), &echov1.EchoRequest{Message: "x"}); err != nil {
		t.Fatalf("call: %v", err)
	}
	for path, want := range map[string]string{"http://" + a.HTTP[0].String() + "/": "hello", "http://" + a.Admin.String() + "/healthz": "SERVING\n"} {
		resp, err := http.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("GET %s: got %q, want %q", path, body, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v, want nil", err)
	}
	_, err = echov1.NewEchoServiceClient(conn).Echo(grpckittest.Context(t, 2*time.Second), &echov1.EchoRequest{Message: "x"})
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("call after Run returned: got %v, want Unavailable", err)
	}
}

func TestRunSignal(t *testing.T) {
	srv, err := server.New(grpckit.WithInsecure(), grpckit.WithAccessLog(false))
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan app.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(context.Background(), config(t), app.WithServer(srv, ""), app.WithLogger(quiet()),
			app.WithSignals(syscall.SIGUSR1), app.WithReady(func(a app.Addrs) { ready <- a }))
	}()
	<-ready
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after the signal: %v, want nil", err)
	}
}

func TestRunFailsFastOnBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	srv, err := server.New(grpckit.WithInsecure(), grpckit.WithAccessLog(false))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := app.Run(context.Background(), config(t), app.WithServer(srv, busy.Addr().String()), app.WithLogger(quiet())); err == nil {
		t.Fatal("Run on a busy port: got nil, want an error")
	}
	if err := app.Run(context.Background(), config(t), app.WithLogger(quiet())); err == nil {
		t.Fatal("Run without a server: got nil, want an error")
	}
}
