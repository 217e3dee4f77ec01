package streamlimit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"net"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/grpckit/grpckit/internal/streamlimit"
	"github.com/grpckit/grpckit/internal/testcert"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a gRPC server with opts and returns its address.
func serve(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return lis.Addr().String()
}

// learn makes one call to addr through creds wrapped by Credentials and
// returns what the Limit learned.
func learn(t *testing.T, addr string, creds credentials.TransportCredentials) uint32 {
	t.Helper()
	var l streamlimit.Limit
	r := manual.NewBuilderWithScheme("limit")
	r.InitialState(resolver.State{Addresses: []resolver.Address{streamlimit.WithLimit(resolver.Address{Addr: addr}, &l)}})
	cc, err := grpc.NewClient(r.Scheme()+":///x", grpc.WithResolvers(r), grpc.WithTransportCredentials(streamlimit.Credentials(creds)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	return l.Get()
}

func TestLearnsServersLimit(t *testing.T) {
	pair, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		server []grpc.ServerOption
		client credentials.TransportCredentials
		want   uint32
	}{
		{"plaintext", []grpc.ServerOption{grpc.MaxConcurrentStreams(3)}, insecure.NewCredentials(), 3},
		{"TLS", []grpc.ServerOption{grpc.MaxConcurrentStreams(7), grpc.Creds(credentials.NewTLS(pair.Server))}, credentials.NewTLS(pair.Client), 7},
		{"no limit", nil, insecure.NewCredentials(), math.MaxUint32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := learn(t, serve(t, tc.server...), tc.client); got != tc.want {
				t.Errorf("limit = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestWithoutLimitAttributeUnwrapped(t *testing.T) {
	addr := serve(t)
	c := streamlimit.Credentials(insecure.NewCredentials())
	if streamlimit.Credentials(c) != c {
		t.Error("wrapping twice")
	}
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, _, err := c.ClientHandshake(context.Background(), "x", raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := conn.(*streamlimit.Conn); ok {
		t.Error("a connection without a Limit was wrapped")
	}
}

// settings returns a SETTINGS frame with the given (id, value) pairs.
func settings(flags byte, kv ...uint32) []byte {
	payload := make([]byte, 0, len(kv)*3)
	for i := 0; i+1 < len(kv); i += 2 {
		payload = binary.BigEndian.AppendUint16(payload, uint16(kv[i]))
		payload = binary.BigEndian.AppendUint32(payload, kv[i+1])
	}
	n := len(payload)
	return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), 0x4, flags, 0, 0, 0, 0}, payload...)
}

// scanned feeds b to a Conn in chunks of size step and returns the limit.
func scanned(b []byte, step int) uint32 {
	var l streamlimit.Limit
	c := streamlimit.NewTestConn(bytes.NewReader(b), &l)
	buf := make([]byte, step)
	for {
		if _, err := c.Read(buf); err != nil {
			return l.Get()
		}
	}
}

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		{"limit", settings(0, 0x3, 100), 100},
		{"among others", settings(0, 0x1, 4096, 0x3, 5, 0x4, 65535), 5},
		{"none", settings(0, 0x4, 65535), math.MaxUint32},
		{"empty", settings(0), math.MaxUint32},
		{"zero", settings(0, 0x3, 0), 1},
		{"ack first", settings(1, 0x3, 5), 0},
		{"not settings", []byte{0, 0, 0, 0x6, 0, 0, 0, 0, 0}, 0},
		{"bad length", []byte{0, 0, 5, 0x4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0}, 0},
		{"oversized", append([]byte{0, 0x40, 0, 0x4, 0, 0, 0, 0, 0}, make([]byte, 100)...), 0},
		{"truncated", settings(0, 0x3, 5)[:12], 0},
		{"followed by more", append(settings(0, 0x3, 9), settings(0, 0x3, 1)...), 9},
	} {
		for _, step := range []int{1, 2, 5, 9, 4096} {
			if got := scanned(tc.in, step); got != tc.want {
				t.Errorf("%s, reads of %d: limit = %d, want %d", tc.name, step, got, tc.want)
			}
		}
	}
}

// FuzzScan: any bytes, read in any chunk size, give the same limit as one
// read, without panicking.
func FuzzScan(f *testing.F) {
	f.Add(settings(0, 0x3, 100), 3)
	f.Add(settings(0, 0x1, 4096, 0x3, 5), 1)
	f.Add(settings(1), 7)
	f.Add([]byte{0, 0, 6, 0x4, 0, 0, 0, 0}, 2)
	f.Fuzz(func(t *testing.T, b []byte, step int) {
		if step < 1 || step > len(b)+1 {
			step = 1
		}
		whole := scanned(b, len(b)+1)
		if got := scanned(b, step); got != whole {
			t.Fatalf("reads of %d: %d, one read: %d", step, got, whole)
		}
	})
}
