package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/certs"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/logbuf"
	"github.com/grpckit/grpckit/internal/testcert"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	serverDNS = "server.example.org"
	clientURI = "spiffe://example.org/client"
	fast      = 10 * time.Millisecond // reload interval of the tests
)

// testCA is a certificate authority made for one test.
type testCA = testcert.CA

func newCA(t testing.TB, name string) *testCA { return testcert.NewCA(t, name) }

// leaf is a certificate and key in PEM, and the certificate's serial.
type leaf struct {
	cert, key []byte
	serial    int64
}

// issue makes a server certificate (127.0.0.1 and serverDNS) or a client
// one (clientURI) signed by ca, valid for an hour around now unless
// expired.
func issue(t testing.TB, ca *testCA, isClient, expired bool) leaf {
	t.Helper()
	tmpl := &x509.Certificate{}
	if expired {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	}
	if isClient {
		u, _ := url.Parse(clientURI)
		tmpl.Subject = pkix.Name{CommonName: "client"}
		tmpl.URIs = []*url.URL{u}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.Subject = pkix.Name{CommonName: serverDNS}
		tmpl.DNSNames = []string{serverDNS}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	l := ca.Issue(t, tmpl)
	return leaf{cert: l.CertPEM, key: l.KeyPEM, serial: l.Serial}
}

// write writes b to path by a rename, so that a reader sees all or nothing.
func write(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// files writes l to dir/name.crt and dir/name.key and returns the paths.
func (l leaf) files(t testing.TB, dir, name string) (cert, key string) {
	t.Helper()
	cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	write(t, cert, l.cert)
	write(t, key, l.key)
	return cert, key
}

func caFile(t testing.TB, dir, name string, cas ...*testCA) string {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.PEM...)
	}
	path := filepath.Join(dir, name)
	write(t, path, b)
	return path
}

func newServer(t testing.TB, cert, key string, opts ...certs.ServerOption) *certs.Server {
	t.Helper()
	s, err := certs.NewServer(cert, key, append([]certs.ServerOption{certs.WithReloadInterval(fast)}, opts...)...)
	if err != nil {
		t.Fatalf("certs.NewServer: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newClient(t testing.TB, opts ...certs.ClientOption) *certs.Client {
	t.Helper()
	c, err := certs.NewClient(append([]certs.ClientOption{certs.WithReloadInterval(fast)}, opts...)...)
	if err != nil {
		t.Fatalf("certs.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var quiet = grpckit.WithAccessLog(false)

// backend answers Echo with the URI SAN of the client's certificate, or
// "anonymous".
func backend() *grpckittest.Backend {
	return &grpckittest.Backend{Handler: func(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		msg := "anonymous"
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
				if uris := info.State.PeerCertificates[0].URIs; len(uris) > 0 {
					msg = uris[0].String()
				}
			}
		}
		return &echov1.EchoResponse{Message: msg}, nil
	}}
}

// call makes one call over a new connection to addr (dialled whatever
// the target's host) and returns the answer and the serial of the
// server's certificate.
func call(t testing.TB, target, addr string, cfg *tls.Config) (string, int64, error) {
	t.Helper()
	conn, err := client.New("passthrough:///"+target, quiet, grpckit.WithTLS(cfg),
		client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		})))
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	res, err := echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{Message: "hi"}, grpc.Peer(&p))
	if err != nil {
		return "", 0, err
	}
	info := p.AuthInfo.(credentials.TLSInfo)
	return res.GetMessage(), info.State.PeerCertificates[0].SerialNumber.Int64(), nil
}

func TestHandshakes(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "test CA"), newCA(t, "other CA")
	good := issue(t, ca, false, false)
	srvCert, srvKey := good.files(t, dir, "server")
	expCert, expKey := issue(t, ca, false, true).files(t, dir, "expired")
	cliCert, cliKey := issue(t, ca, true, false).files(t, dir, "client")
	caPEM, otherPEM := caFile(t, dir, "ca.PEM", ca), caFile(t, dir, "other.PEM", other)

	tlsSrv := grpckittest.NewServer(t, backend().Register, quiet, grpckit.WithTLS(newServer(t, srvCert, srvKey).Config()))
	mtlsSrv := grpckittest.NewServer(t, backend().Register, quiet,
		grpckit.WithTLS(newServer(t, srvCert, srvKey, certs.WithClientCA(caPEM)).Config()))
	expSrv := grpckittest.NewServer(t, backend().Register, quiet, grpckit.WithTLS(newServer(t, expCert, expKey).Config()))

	for _, tc := range []struct {
		name    string
		srv     *grpckittest.Server
		target  string // host:port the client dials (always reaching srv)
		opts    []certs.ClientOption
		want    string // the answer, or
		wantErr string // a part of the error
	}{
		{name: "TLS by IP", srv: tlsSrv, target: "127.0.0.1:1",
			opts: []certs.ClientOption{certs.WithCA(caPEM), certs.WithServerName("127.0.0.1")}, want: "anonymous"},
		{name: "TLS by target's DNS name", srv: tlsSrv, target: serverDNS + ":443",
			opts: []certs.ClientOption{certs.WithCA(caPEM)}, want: "anonymous"},
		{name: "TLS by WithServerName", srv: tlsSrv, target: "127.0.0.1:1",
			opts: []certs.ClientOption{certs.WithCA(caPEM), certs.WithServerName(serverDNS)}, want: "anonymous"},
		{name: "mTLS", srv: mtlsSrv, target: serverDNS + ":443",
			opts: []certs.ClientOption{certs.WithCA(caPEM), certs.WithCertificate(cliCert, cliKey)}, want: clientURI},
		{name: "wrong CA", srv: tlsSrv, target: serverDNS + ":443",
			opts: []certs.ClientOption{certs.WithCA(otherPEM)}, wantErr: "certificate signed by unknown authority"},
		{name: "system roots do not know the test CA", srv: tlsSrv, target: serverDNS + ":443",
			wantErr: "certificate signed by unknown authority"},
		{name: "wrong target name", srv: tlsSrv, target: "wrong.example.org:443",
			opts: []certs.ClientOption{certs.WithCA(caPEM)}, wantErr: `certificate is valid for server.example.org, not wrong.example.org`},
		{name: "wrong WithServerName", srv: tlsSrv, target: "127.0.0.1:1",
			opts: []certs.ClientOption{certs.WithCA(caPEM), certs.WithServerName("wrong.example.org")}, wantErr: "not wrong.example.org"},
		{name: "wrong IP", srv: tlsSrv, target: "127.0.0.1:1",
			opts: []certs.ClientOption{certs.WithCA(caPEM), certs.WithServerName("127.0.0.2")}, wantErr: "not 127.0.0.2"},
		{name: "IP target without WithServerName", srv: tlsSrv, target: "127.0.0.1:1",
			opts: []certs.ClientOption{certs.WithCA(caPEM)}, wantErr: "use certs.WithServerName"},
		{name: "expired server certificate", srv: expSrv, target: serverDNS + ":443",
			opts: []certs.ClientOption{certs.WithCA(caPEM)}, wantErr: "certificate has expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := call(t, tc.target, tc.srv.Addr, newClient(t, tc.opts...).Config())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tc.want || n != good.serial {
				t.Errorf("got answer %q from certificate %d, want %q from %d", got, n, tc.want, good.serial)
			}
		})
	}
}

// In TLS 1.3 a server rejects a client's certificate after the client's
// handshake has finished: a gRPC client sees Unavailable with the alert or
// with a broken pipe, whichever comes first. The alert, read on a bare TLS
// connection made with the same configuration, names the cause.
func TestClientCertificateRejected(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "test CA"), newCA(t, "other CA")
	srvCert, srvKey := issue(t, ca, false, false).files(t, dir, "server")
	strangerCert, strangerKey := issue(t, other, true, false).files(t, dir, "stranger")
	caPEM := caFile(t, dir, "ca.PEM", ca)
	srv := grpckittest.NewServer(t, backend().Register, quiet,
		grpckit.WithTLS(newServer(t, srvCert, srvKey, certs.WithClientCA(caPEM)).Config()))

	for _, tc := range []struct {
		name    string
		opts    []certs.ClientOption
		wantErr string
	}{
		{name: "missing client certificate", opts: []certs.ClientOption{certs.WithCA(caPEM)},
			wantErr: "remote error: tls: certificate required"},
		{name: "client certificate of another CA",
			opts:    []certs.ClientOption{certs.WithCA(caPEM), certs.WithCertificate(strangerCert, strangerKey)},
			wantErr: "remote error: tls: unknown certificate authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := newClient(t, tc.opts...).Config()
			if _, _, err := call(t, serverDNS+":443", srv.Addr, cfg); status.Code(err) != codes.Unavailable {
				t.Errorf("gRPC call: got %v, want code Unavailable", err)
			}
			cfg.ServerName, cfg.NextProtos = serverDNS, []string{"h2"}
			conn, err := tls.Dial("tcp", srv.Addr, cfg)
			if err == nil {
				defer conn.Close()
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Read(make([]byte, 1))
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// kubeDir lays files out as the kubelet projects a Secret: dir/tls.crt
// and dir/tls.key are symlinks into dir/..data, itself a symlink to a
// directory of the version, which publish replaces with one rename.
type kubeDir struct {
	dir string
	n   int
}

func (k *kubeDir) cert() string { return filepath.Join(k.dir, "tls.crt") }
func (k *kubeDir) key() string  { return filepath.Join(k.dir, "tls.key") }

func (k *kubeDir) publish(t testing.TB, l leaf) {
	t.Helper()
	k.n++
	version := fmt.Sprintf("..2026_12_03_%02d", k.n)
	if err := os.Mkdir(filepath.Join(k.dir, version), 0o700); err != nil {
		t.Fatal(err)
	}
	l.files(t, filepath.Join(k.dir, version), "tls")
	k.swap(t, version)
}

// swap points ..data to version, as the kubelet does.
func (k *kubeDir) swap(t testing.TB, version string) {
	t.Helper()
	old, _ := os.Readlink(filepath.Join(k.dir, "..data"))
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if old == "" {
		for _, f := range []string{"tls.crt", "tls.key"} {
			if err := os.Symlink(filepath.Join("..data", f), filepath.Join(k.dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	if err := os.RemoveAll(filepath.Join(k.dir, old)); err != nil {
		t.Fatal(err)
	}
}

var discard = slog.New(slog.DiscardHandler)

// While a client makes calls over new connections in a loop, the server's
// certificate is rewritten in place (not atomically, so the server also
// reads half-written and mismatched files), then replaced the way
// Kubernetes replaces a Secret. Every call succeeds, and the server
// presents each new certificate.
func TestRotationWhileCalling(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "test CA")
	l1, l2, l3 := issue(t, ca, false, false), issue(t, ca, false, false), issue(t, ca, false, false)
	k := &kubeDir{dir: dir}
	k.publish(t, l1)
	certsSrv := newServer(t, k.cert(), k.key(), certs.WithLogger(discard))
	srv := grpckittest.NewServer(t, backend().Register, quiet, grpckit.WithTLS(certsSrv.Config()))
	cfg := newClient(t, certs.WithCA(caFile(t, dir, "ca.PEM", ca))).Config()

	var (
		calls, failed atomic.Int64
		last          atomic.Int64 // serial of the last call's server certificate
		stop          = make(chan struct{})
		done          = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, n, err := call(t, serverDNS+":443", srv.Addr, cfg)
			calls.Add(1)
			if err != nil {
				failed.Add(1)
				t.Errorf("call %d: %v", calls.Load(), err)
				continue
			}
			last.Store(n)
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()

	sees := func(l leaf) func() bool { return func() bool { return last.Load() == l.serial } }
	more := func(what string) {
		n := calls.Load()
		wait.For(t, 5*time.Second, "more calls "+what, func() bool { return calls.Load() > n+3 })
	}
	wait.For(t, 5*time.Second, "calls served with the first certificate", sees(l1))
	more("with the first certificate")

	// In place, one file after the other, truncating each first.
	if err := os.WriteFile(k.cert(), l2.cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.key(), l2.key, 0o600); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "calls served with the certificate rewritten in place", sees(l2))
	more("with the certificate rewritten in place")

	k.publish(t, l3)
	wait.For(t, 5*time.Second, "calls served with the certificate of the new ..data", sees(l3))
	more("with the certificate of the new ..data")

	if got := certsSrv.Certificate().SerialNumber.Int64(); got != l3.serial {
		t.Errorf("got Certificate serial %d, want %d", got, l3.serial)
	}
	if err := certsSrv.Err(); err != nil {
		t.Errorf("got Err %v, want nil", err)
	}
	if failed.Load() != 0 {
		t.Errorf("got %d failed calls of %d, want 0", failed.Load(), calls.Load())
	}
	t.Logf("%d calls, none failed", calls.Load())
}

// lockedBuffer is a log destination that tests read while the reloader writes.
type lockedBuffer = logbuf.Buffer

func TestBadFilesKeepTheLastGoodCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "test CA")
	l1, l2, l3 := issue(t, ca, false, false), issue(t, ca, false, false), issue(t, ca, false, false)
	// Both files change at once (a Kubernetes Secret), so that each case
	// is one state of the pair.
	k := &kubeDir{dir: dir}
	k.publish(t, l1)
	var logs lockedBuffer
	certsSrv := newServer(t, k.cert(), k.key(), certs.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	srv := grpckittest.NewServer(t, backend().Register, quiet, grpckit.WithTLS(certsSrv.Config()))
	cfg := newClient(t, certs.WithCA(caFile(t, dir, "ca.PEM", ca))).Config()
	servesOld := func(t *testing.T) {
		t.Helper()
		if got := certsSrv.Certificate().SerialNumber.Int64(); got != l1.serial {
			t.Errorf("got Certificate serial %d, want %d", got, l1.serial)
		}
		if _, n, err := call(t, serverDNS+":443", srv.Addr, cfg); err != nil || n != l1.serial {
			t.Errorf("got certificate %d, error %v; want %d, nil", n, err, l1.serial)
		}
	}

	for _, tc := range []struct {
		name      string
		cert, key []byte
		wantErr   string
	}{
		{name: "half-written certificate", cert: l2.cert[:len(l2.cert)/2], key: l2.key,
			wantErr: "failed to find any PEM data in certificate input"},
		{name: "key of another certificate", cert: l2.cert, key: l3.key,
			wantErr: "private key does not match public key"},
		{name: "empty key", cert: l2.cert, key: nil,
			wantErr: "failed to find any PEM data in key input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k.publish(t, leaf{cert: tc.cert, key: tc.key})
			wait.For(t, 5*time.Second, "Err to report "+tc.wantErr, func() bool {
				err := certsSrv.Err()
				return err != nil && strings.Contains(err.Error(), tc.wantErr)
			})
			if err := certsSrv.Err().Error(); !strings.Contains(err, "keeping the last good certificates") {
				t.Errorf("got Err %q, want it to say the last good certificates are kept", err)
			}
			servesOld(t)
		})
	}
	if got := strings.Count(logs.String(), "certs: reload failed"); got != 3 {
		t.Errorf("got %d logged failures, want 3 (one per bad content):\n%s", got, logs.String())
	}

	k.publish(t, l2)
	wait.For(t, 5*time.Second, "the good certificate to load", func() bool {
		return certsSrv.Err() == nil && certsSrv.Certificate().SerialNumber.Int64() == l2.serial
	})
	if _, n, err := call(t, serverDNS+":443", srv.Addr, cfg); err != nil || n != l2.serial {
		t.Errorf("got certificate %d, error %v; want %d, nil", n, err, l2.serial)
	}
}

// New CA bundles take effect without a restart on both sides: the
// client's bundle of server CAs and the server's bundle of client CAs.
func TestCABundlesReload(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := newCA(t, "CA 1"), newCA(t, "CA 2")
	srvCert, srvKey := issue(t, ca2, false, false).files(t, dir, "server")
	cliCert, cliKey := issue(t, ca2, true, false).files(t, dir, "client")
	clientCAs := caFile(t, dir, "client-cas.PEM", ca1)
	serverCAs := caFile(t, dir, "server-cas.PEM", ca1)
	srv := grpckittest.NewServer(t, backend().Register, quiet,
		grpckit.WithTLS(newServer(t, srvCert, srvKey, certs.WithClientCA(clientCAs), certs.WithLogger(discard)).Config()))
	cli := newClient(t, certs.WithCA(serverCAs), certs.WithCertificate(cliCert, cliKey), certs.WithLogger(discard))
	cfg := cli.Config()

	if _, _, err := call(t, serverDNS+":443", srv.Addr, cfg); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("before the client trusts CA 2: got %v, want unknown authority", err)
	}
	write(t, serverCAs, append(append([]byte{}, ca1.PEM...), ca2.PEM...))
	ok := func() bool {
		got, _, err := call(t, serverDNS+":443", srv.Addr, cfg)
		return err == nil && got == clientURI
	}
	// The server does not trust the client yet.
	wait.For(t, 5*time.Second, "the client to trust CA 2", func() bool {
		_, _, err := call(t, serverDNS+":443", srv.Addr, cfg)
		return err != nil && !strings.Contains(err.Error(), "unknown authority") && status.Code(err) == codes.Unavailable
	})
	if ok() {
		t.Fatal("the server accepted a client of CA 2 before trusting CA 2")
	}
	write(t, clientCAs, append(append([]byte{}, ca1.PEM...), ca2.PEM...))
	wait.For(t, 5*time.Second, "the server to accept clients of CA 2", ok)

	// A half-written bundle keeps the last one.
	write(t, serverCAs, ca2.PEM[:len(ca2.PEM)-20])
	wait.For(t, 5*time.Second, "Err to report the bad bundle", func() bool {
		err := cli.Err()
		return err != nil && strings.Contains(err.Error(), "half-written")
	})
	if !ok() {
		t.Error("a half-written bundle broke the client")
	}
}

func TestConstruction(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "test CA")
	certFile, keyFile := issue(t, ca, false, false).files(t, dir, "server")
	caPEM := caFile(t, dir, "ca.PEM", ca)
	missing := filepath.Join(dir, "missing.pem")
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			new     func() error
			wantErr string
		}{
			{"server without files", func() error { _, err := certs.NewServer("", ""); return err }, "empty file name"},
			{"server missing file", func() error { _, err := certs.NewServer(missing, keyFile); return err }, "no such file"},
			{"key for certificate", func() error { _, err := certs.NewServer(keyFile, keyFile); return err }, "certs: server:"},
			{"zero interval", func() error { _, err := certs.NewServer(certFile, keyFile, certs.WithReloadInterval(0)); return err }, "WithReloadInterval: 0s"},
			{"nil logger", func() error { _, err := certs.NewClient(certs.WithLogger(nil)); return err }, "WithLogger: nil logger"},
			{"empty client CA", func() error { _, err := certs.NewServer(certFile, keyFile, certs.WithClientCA("")); return err }, "WithClientCA: empty"},
			{"missing client CA", func() error { _, err := certs.NewServer(certFile, keyFile, certs.WithClientCA(missing)); return err }, "no such file"},
			{"missing CA", func() error { _, err := certs.NewClient(certs.WithCA(missing)); return err }, "no such file"},
			{"key as CA", func() error { _, err := certs.NewClient(certs.WithCA(keyFile)); return err }, `unexpected PEM block "PRIVATE KEY"`},
			{"empty CA", func() error { _, err := certs.NewClient(certs.WithCA(caFile(t, dir, "empty.pem"))); return err }, "no PEM certificate"},
			{"empty server name", func() error { _, err := certs.NewClient(certs.WithServerName("")); return err }, "WithServerName: empty"},
			{"half a certificate", func() error { _, err := certs.NewClient(certs.WithCertificate(certFile, caPEM)); return err }, "certs: client:"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.new()
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
				}
			})
		}
	})
	t.Run("close twice", func(t *testing.T) {
		s, err := certs.NewServer(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := certs.NewClient() // system roots, no files: no goroutine
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := s.Close(); err != nil {
				t.Errorf("got Server.Close %v, want nil", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("got Client.Close %v, want nil", err)
			}
		}
	})
}

// A resumed TLS session skips the verification of the client's
// certificate: a session from before a new client CA bundle must not be
// resumed after it.
func TestNoResumptionAcrossReloads(t *testing.T) {
	dir := t.TempDir()
	ca, other := newCA(t, "test CA"), newCA(t, "other CA")
	srvCert, srvKey := issue(t, ca, false, false).files(t, dir, "server")
	cliCert, cliKey := issue(t, ca, true, false).files(t, dir, "client")
	clientCAs := caFile(t, dir, "client-cas.PEM", ca)
	srv := grpckittest.NewServer(t, backend().Register, quiet,
		grpckit.WithTLS(newServer(t, srvCert, srvKey, certs.WithClientCA(clientCAs)).Config()))
	cli := newClient(t, certs.WithCA(caFile(t, dir, "ca.PEM", ca)), certs.WithCertificate(cliCert, cliKey))

	// dial completes a handshake and reads the server's first bytes (and
	// with them its session ticket).
	dial := func(cache tls.ClientSessionCache) (tls.ConnectionState, error) {
		cfg := cli.Config()
		cfg.ServerName, cfg.NextProtos, cfg.ClientSessionCache = serverDNS, []string{"h2"}, cache
		conn, err := tls.Dial("tcp", srv.Addr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		return conn.ConnectionState(), err
	}
	cache := tls.NewLRUClientSessionCache(4)
	if _, err := dial(cache); err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	if cs, err := dial(cache); err != nil || !cs.DidResume {
		t.Fatalf("second handshake: got resumed %v, error %v; want a resumed session", cs.DidResume, err)
	}

	write(t, clientCAs, other.PEM)
	wait.For(t, 5*time.Second, "the server to stop trusting the client's CA", func() bool {
		_, err := dial(nil)
		return err != nil
	})
	cs, err := dial(cache)
	if err == nil || cs.DidResume {
		t.Fatalf("after the reload: got resumed %v, error %v; want no session and a rejected certificate", cs.DidResume, err)
	}
	if !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Errorf("got error %v, want unknown certificate authority", err)
	}
}
