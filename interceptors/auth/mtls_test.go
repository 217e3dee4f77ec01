package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/baregrpc"
	"github.com/grpckit/grpckit/internal/testcert"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// issue returns a certificate for tmpl's names signed by ca.
func issue(t *testing.T, ca *testcert.CA, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	return ca.Issue(t, tmpl).TLS
}

func TestMTLSIdentity(t *testing.T) {
	ca := testcert.NewCA(t, "grpckit test CA")
	const spiffe = "spiffe://example.org/ns/default/sa/client"
	u, err := url.Parse(spiffe)
	if err != nil {
		t.Fatal(err)
	}
	serverCert := issue(t, ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "server"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	spiffeCert := issue(t, ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "client"},
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	plainCert := issue(t, ca, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "batch", Organization: []string{"grpckit"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	k := newChecker(t, auth.WithMTLS(), auth.WithLogger(discard()), auth.WithRules(
		auth.Rule{Method: echov1.EchoService_Echo_FullMethodName, Subjects: []string{spiffe, "CN=batch,O=grpckit"}},
		auth.Rule{Method: echov1.EchoService_BidiStream_FullMethodName, Subjects: []string{spiffe}},
	))
	addr := serve(t, k, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
	})))
	dial := func(certs ...tls.Certificate) echov1.EchoServiceClient {
		return echov1.NewEchoServiceClient(baregrpc.Dial(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs:      ca.Pool(),
			Certificates: certs,
			ServerName:   "127.0.0.1",
			MinVersion:   tls.VersionTLS12,
		}))))
	}
	ctx := grpckittest.Context(t, 10*time.Second)
	for _, tc := range []struct {
		name    string
		c       echov1.EchoServiceClient
		unary   codes.Code
		stream  codes.Code
		subject string
	}{
		{"SPIFFE ID", dial(spiffeCert), codes.OK, codes.OK, spiffe},
		{"subject DN", dial(plainCert), codes.OK, codes.PermissionDenied, "CN=batch,O=grpckit"},
		{"no client certificate", dial(), codes.Unauthenticated, codes.Unauthenticated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctx
			if tc.name == "SPIFFE ID" {
				// A token meant for someone else does not matter
				// without a verifier.
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer for-another-service")
			}
			code, msg, sub := echo(ctx, tc.c)
			if code != tc.unary {
				t.Fatalf("Echo: got %v (%q), want %v", code, msg, tc.unary)
			}
			if code == codes.OK && sub != tc.subject {
				t.Errorf("Echo: handler saw %q, want %q", sub, tc.subject)
			}
			code, sub = bidi(ctx, tc.c)
			if code != tc.stream {
				t.Fatalf("BidiStream: got %v, want %v", code, tc.stream)
			}
			if code == codes.OK && sub != tc.subject {
				t.Errorf("BidiStream: handler saw %q, want %q", sub, tc.subject)
			}
		})
	}
}
