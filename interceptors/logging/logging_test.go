package logging_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/logging"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/logbuf"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// buffer is the JSON log the tests read.
type buffer = logbuf.Buffer

func waitLines(t *testing.T, b *buffer, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if l := b.JSONLines(t); len(l) >= n || time.Now().After(deadline) {
			if len(l) != n {
				t.Fatalf("got %d lines, want %d: %v", len(l), n, l)
			}
			return l
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDefaultLevel(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		want slog.Level
	}{
		{codes.OK, slog.LevelInfo},
		{codes.InvalidArgument, slog.LevelWarn},
		{codes.NotFound, slog.LevelWarn},
		{codes.ResourceExhausted, slog.LevelWarn},
		{codes.Canceled, slog.LevelWarn},
		{codes.Internal, slog.LevelError},
		{codes.Unavailable, slog.LevelError},
		{codes.DeadlineExceeded, slog.LevelError},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			if got := logging.DefaultLevel(tc.code); got != tc.want {
				t.Fatalf("DefaultLevel(%v) = %v, want %v", tc.code, got, tc.want)
			}
		})
	}
}

// serve serves an echo backend and grpc's health service on a bare grpc-go
// server with the logging interceptors configured by sopts (none: no
// logging), and returns a bare client with the client interceptors
// configured by copts (none: no logging).
func serve(t *testing.T, sopts, copts []logging.Option) *grpc.ClientConn {
	t.Helper()
	var so []grpc.ServerOption
	if sopts != nil {
		so = append(so, grpc.ChainUnaryInterceptor(logging.UnaryServerInterceptor(sopts...)),
			grpc.ChainStreamInterceptor(logging.StreamServerInterceptor(sopts...)))
	}
	var co []grpc.DialOption
	if copts != nil {
		co = append(co, grpc.WithChainUnaryInterceptor(logging.UnaryClientInterceptor(copts...)),
			grpc.WithChainStreamInterceptor(logging.StreamClientInterceptor(copts...)))
	}
	addr := baregrpc.Serve(t, func(r grpc.ServiceRegistrar) {
		(&grpckittest.Backend{}).Register(r)
		healthpb.RegisterHealthServer(r, health.NewServer())
	}, so...)
	return baregrpc.Dial(t, addr, co...)
}

func TestStreamsAndOptions(t *testing.T) {
	sbuf, cbuf := &buffer{}, &buffer{}
	slogger := slog.New(slog.NewJSONHandler(sbuf, nil))
	clogger := slog.New(slog.NewJSONHandler(cbuf, nil))
	conn := serve(t,
		[]logging.Option{logging.WithLogger(slogger), logging.WithPayloads(true),
			logging.WithLevels(func(codes.Code) slog.Level { return slog.LevelDebug + 1 })}, // everything just above Debug
		[]logging.Option{logging.WithLogger(clogger), logging.WithLogHealth(true)})
	ec := echov1.NewEchoServiceClient(conn)
	ctx := grpckittest.Context(t, 10*time.Second)

	// Levels below the logger's threshold (Info) are dropped: the server logs nothing.
	if _, err := ec.Echo(ctx, &echov1.EchoRequest{Message: "payload-x"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if l := sbuf.JSONLines(t); len(l) != 0 {
		t.Fatalf("server logged %v below its threshold", l)
	}
	cl := waitLines(t, cbuf, 1)
	if _, ok := cl[0]["grpc.request"]; ok {
		t.Fatal("client logged the payload without WithPayloads")
	}

	bs, err := ec.BidiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := bs.Send(&echov1.BidiStreamRequest{Message: "m"}); err != nil {
			t.Fatal(err)
		}
		if _, err := bs.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_ = bs.CloseSend()
	for err == nil {
		_, err = bs.Recv()
	}
	cl = waitLines(t, cbuf, 2)
	l := cl[1]
	if l["grpc.method_type"] != "bidi_stream" || l["grpc.msg_sent"] != 3.0 || l["grpc.msg_received"] != 3.0 || l["grpc.code"] != "OK" {
		t.Fatalf("client stream line = %v, want bidi_stream with 3 sent, 3 received, OK", l)
	}
}

func TestPayloadsWhenAsked(t *testing.T) {
	sbuf := &buffer{}
	conn := serve(t, []logging.Option{logging.WithLogger(slog.New(slog.NewJSONHandler(sbuf, nil))), logging.WithPayloads(true)}, nil)
	ec := echov1.NewEchoServiceClient(conn)
	if _, err := ec.Echo(grpckittest.Context(t, 10*time.Second), &echov1.EchoRequest{Message: "payload-x"}); err != nil {
		t.Fatal(err)
	}
	l := waitLines(t, sbuf, 1)[0]
	req, _ := json.Marshal(l["grpc.request"])
	if !strings.Contains(string(req), "payload-x") {
		t.Fatalf("grpc.request = %s, want the request", req)
	}
}

func TestHealthLoggedWhenAsked(t *testing.T) {
	sbuf := &buffer{}
	conn := serve(t, []logging.Option{logging.WithLogger(slog.New(slog.NewJSONHandler(sbuf, nil))), logging.WithLogHealth(true)}, nil)
	ctx := grpckittest.Context(t, 10*time.Second)
	ss, err := echov1.NewEchoServiceClient(conn).ServerStream(ctx, &echov1.ServerStreamRequest{Message: "s", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = ss.Recv()
	}
	l := waitLines(t, sbuf, 1)[0]
	if l["grpc.method_type"] != "server_stream" || l["grpc.msg_sent"] != 2.0 {
		t.Fatalf("server stream line = %v, want server_stream with 2 sent", l)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if l := waitLines(t, sbuf, 2)[1]; l["grpc.service"] != "grpc.health.v1.Health" {
		t.Fatalf("health line = %v, want grpc.health.v1.Health logged", l)
	}
}

// addrOfValue is a net.Addr of a non-comparable type: the peer address
// cache must not compare or hash it.
type addrOfValue struct{ ip net.IP }

func (a addrOfValue) Network() string { return "ip" }
func (a addrOfValue) String() string  { return a.ip.String() }

func TestPeerAddressOfAnyType(t *testing.T) {
	var buf buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	i := logging.UnaryServerInterceptor(logging.WithLogger(l))
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.echo.v1.EchoService/Echo"}
	for _, a := range []net.Addr{addrOfValue{net.IPv4(10, 0, 0, 1)}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 7}, addrOfValue{net.IPv4(10, 0, 0, 3)}} {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: a})
		if _, err := i(ctx, nil, info, func(context.Context, any) (any, error) { return nil, nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{`"peer.address":"10.0.0.1"`, `"peer.address":"10.0.0.2:7"`, `"peer.address":"10.0.0.3"`} {
		out := buf.String()
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
