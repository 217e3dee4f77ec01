package grpckit_test

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/internal/echo"
	"github.com/grpckit/grpckit/internal/testcert"
	"github.com/grpckit/grpckit/internal/testsrv"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every shared option refuses the same invalid input with the same error
// on both sides.
func TestSameErrorsOnBothSides(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  grpckit.Option
		want string
	}{
		{"nil logger", grpckit.WithLogger(nil), "grpckit: WithLogger: nil logger"},
		{"nil TLS", grpckit.WithTLS(nil), "grpckit: WithTLS: nil *tls.Config"},
		{"nil credentials", grpckit.WithTransportCredentials(nil), "grpckit: WithTransportCredentials: nil credentials"},
		{"sampling ratio", grpckit.WithTraceSampling(2), "grpckit: WithTraceSampling: ratio 2 is not between 0 and 1"},
		{"recv size", grpckit.WithMaxRecvMsgSize(0), "grpckit: WithMaxRecvMsgSize: 0 is not a positive size"},
		{"send size", grpckit.WithMaxSendMsgSize(-1), "grpckit: WithMaxSendMsgSize: -1 is not a positive size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, serr := server.New(tc.opt)
			_, cerr := client.New("passthrough:///127.0.0.1:1", client.WithInsecure(), tc.opt)
			for side, err := range map[string]error{"server": serr, "client": cerr} {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Errorf("%s: got %v, want an error starting %q", side, err, tc.want)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger used from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// One set of shared options configures a server and a client the same
// way: one logger, one registry, TLS, message size limits.
func TestSharedOptionsOnBothSides(t *testing.T) {
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	pair, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	common := []grpckit.Option{
		grpckit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		grpckit.WithMetrics(reg),
		grpckit.WithMaxRecvMsgSize(1 << 10),
	}
	sopts := []server.Option{grpckit.WithTLS(pair.Server)}
	for _, o := range common {
		sopts = append(sopts, o)
	}
	srv, err := server.New(sopts...)
	if err != nil {
		t.Fatal(err)
	}
	echov1.RegisterEchoServiceServer(srv, &echo.Server{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	copts := []client.Option{grpckit.WithTLS(pair.Client)}
	for _, o := range common {
		copts = append(copts, o)
	}
	conn := testsrv.Dial(t, lis.Addr().String(), copts...)
	if srv.Registry() != reg || conn.Registry() != reg {
		t.Fatalf("registries: got server %p, client %p, want both %p", srv.Registry(), conn.Registry(), reg)
	}
	c := echov1.NewEchoServiceClient(conn)
	ctx := testsrv.Ctx(t, 10*time.Second)
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "over TLS"}); err != nil {
		t.Fatalf("call over TLS: %v", err)
	}
	// The size limit holds on both sides: the server refuses a large
	// request, the client a large response.
	big := strings.Repeat("x", 2<<10)
	if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: big}); err == nil {
		t.Error("2 KiB request with a 1 KiB limit: got success, want ResourceExhausted")
	}
	for _, name := range []string{"grpc_server_handled_total", "grpc_client_handled_total"} {
		if !gathered(t, reg, name) {
			t.Errorf("%s: not on the shared registry", name)
		}
	}
	for _, side := range []string{"grpc.component=server", "grpc.component=client"} {
		if !strings.Contains(logs.String(), side) {
			t.Errorf("shared logger: no line with %s", side)
		}
	}
	// nil turns metrics off on both sides.
	off, err := server.New(grpckit.WithMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	offConn, err := client.New("passthrough:///127.0.0.1:1", client.WithInsecure(), grpckit.WithMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer offConn.Close()
	defer off.Close()
	if off.Registry() != nil || offConn.Registry() != nil {
		t.Errorf("WithMetrics(nil): got registries %v, %v, want nil on both", off.Registry(), offConn.Registry())
	}
}

func gathered(t *testing.T, g prometheus.Gatherer, name string) bool {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}
