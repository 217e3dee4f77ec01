package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/certs"
	"github.com/grpckit/grpckit/client"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// whoAmI answers Echo with the URI of the client's certificate.
type whoAmI struct {
	echov1.UnimplementedEchoServiceServer
}

func (whoAmI) Echo(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
	p, _ := peer.FromContext(ctx)
	info := p.AuthInfo.(credentials.TLSInfo) // mutual TLS: a verified client certificate
	return &echov1.EchoResponse{Message: info.State.PeerCertificates[0].URIs[0].String()}, nil
}

// Mutual TLS from PEM files, which are reloaded when they change (every
// 30 s by default): the server presents server.crt and accepts only
// clients with a certificate of ca.pem; the client verifies the server
// against ca.pem and presents client.crt.
func Example() {
	dir, err := os.MkdirTemp("", "certs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := writePKI(dir); err != nil { // ca.pem, server.crt/key, client.crt/key
		log.Fatal(err)
	}
	file := func(name string) string { return filepath.Join(dir, name) }

	serverTLS, err := certs.NewServer(file("server.crt"), file("server.key"), certs.WithClientCA(file("ca.pem")))
	if err != nil {
		log.Fatal(err)
	}
	defer serverTLS.Close()
	srv, err := server.New(grpckit.WithTLS(serverTLS.Config()), grpckit.WithAccessLog(false))
	if err != nil {
		log.Fatal(err)
	}
	echov1.RegisterEchoServiceServer(srv, whoAmI{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()

	clientTLS, err := certs.NewClient(
		certs.WithCA(file("ca.pem")),
		certs.WithCertificate(file("client.crt"), file("client.key")),
		certs.WithServerName("server.example.org"), // the target below is an IP address
	)
	if err != nil {
		log.Fatal(err)
	}
	defer clientTLS.Close()
	conn, err := client.New(lis.Addr().String(), grpckit.WithTLS(clientTLS.Config()), grpckit.WithAccessLog(false))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	var p peer.Peer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := echov1.NewEchoServiceClient(conn).Echo(ctx, &echov1.EchoRequest{}, grpc.Peer(&p))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the server saw:", res.GetMessage())
	fmt.Println("the client saw:", p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].Subject.CommonName)
	// Output:
	// the server saw: spiffe://example.org/client
	// the client saw: server.example.org
}

// writePKI writes a CA (ca.pem), a server certificate for
// server.example.org and 127.0.0.1 (server.crt, server.key) and a client
// certificate for spiffe://example.org/client (client.crt, client.key) to
// dir. In production these files come from your CA (cert-manager, Vault,
// SPIRE...).
func writePKI(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return err
	}
	spiffe, _ := url.Parse("spiffe://example.org/client")
	for i, tmpl := range map[string]*x509.Certificate{
		"server": {
			Subject: pkix.Name{CommonName: "server.example.org"}, DNSNames: []string{"server.example.org"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		},
		"client": {Subject: pkix.Name{CommonName: "client"}, URIs: []*url.URL{spiffe}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(now.UnixNano()), now.Add(-time.Hour), now.Add(time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, i+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, i+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kDER}), 0o600); err != nil {
			return err
		}
	}
	return nil
}
