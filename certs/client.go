package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
)

// Client is a client's TLS configuration whose CA bundle, and own
// certificate if any, come from PEM files and are reloaded when the files
// change. Its Config goes to grpckit.WithTLS. Close stops the reloading.
type Client struct {
	r          reloader
	cur        atomic.Pointer[clientState]
	serverName string
	hasCA      bool
	hasCert    bool
}

type clientState struct {
	roots *x509.CertPool   // nil: the system's roots
	cert  *tls.Certificate // nil: none
}

// NewClient loads the files its options name and starts reloading them:
// [WithCA] for the CA bundle servers are verified against (the system's
// roots without it), [WithCertificate] for a client certificate (mutual
// TLS), [WithServerName] for the name the server's certificate must be
// valid for. It fails if the files do not load or an option is invalid.
func NewClient(opts ...ClientOption) (*Client, error) {
	c, err := newConfig(func(c *config) {
		for _, o := range opts {
			o.applyClient(c)
		}
	})
	if err != nil {
		return nil, err
	}
	cl := &Client{serverName: c.serverName, hasCA: c.ca != "", hasCert: c.certFile != ""}
	var files []string
	if cl.hasCA {
		files = append(files, c.ca)
	}
	if cl.hasCert {
		files = append(files, c.certFile, c.keyFile)
	}
	cl.r = reloader{what: "client", files: files, load: cl.load, interval: c.interval, logger: c.logger}
	if err := cl.r.start(); err != nil {
		return nil, err
	}
	return cl, nil
}

func (c *Client) load(contents [][]byte) error {
	st := &clientState{}
	if c.hasCA {
		pool, err := caPool(contents[0])
		if err != nil {
			return fmt.Errorf("CA: %w", err)
		}
		st.roots = pool
		contents = contents[1:]
	}
	if c.hasCert {
		cert, err := keyPair(contents[0], contents[1])
		if err != nil {
			return err
		}
		st.cert = &cert
	}
	c.cur.Store(st)
	return nil
}

// Config returns a configuration for grpckit.WithTLS (or
// credentials.NewTLS) that verifies each server against the CA bundle
// last loaded and presents the client certificate last loaded. Each call
// returns a new *tls.Config; all of them follow the reloads.
//
// A client's roots are fixed in its Config (grpc-go copies it), so to
// follow a new bundle the configuration sets InsecureSkipVerify and verifies in
// VerifyConnection instead, exactly as crypto/tls would: the whole chain
// against the current roots, for server authentication, at the time of
// the handshake, and the server name (see [WithServerName]). Do not
// replace VerifyConnection on the returned configuration: it is the
// verification. The connection state's VerifiedChains stays empty on
// the client; PeerCertificates holds the verified chain.
func (c *Client) Config() *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.serverName,
		InsecureSkipVerify: true, // verified by VerifyConnection
		VerifyConnection:   c.verify,
	}
	if c.hasCert {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.cur.Load().cert, nil
		}
	}
	return cfg
}

// verify does what crypto/tls does for a client without
// InsecureSkipVerify, with the roots last loaded.
func (c *Client) verify(cs tls.ConnectionState) error {
	// The name the handshake was for: SNI, which grpc-go sets to the
	// target's host, or WithServerName's (the one that reaches here as
	// an empty SNI when it is an IP address).
	name := cs.ServerName
	if name == "" {
		name = c.serverName
	}
	if name == "" {
		return errors.New("certs: no server name to verify the server's certificate against (the target's host is an IP address, which TLS does not send): use certs.WithServerName")
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("certs: the server presented no certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         c.cur.Load().roots,
		DNSName:       name,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("certs: verifying the server's certificate for %q: %w", name, err)
	}
	return nil
}

// Err returns the error of the last reload, nil if it succeeded. While it
// is not nil the client keeps the last good CA bundle and certificate.
func (c *Client) Err() error { return c.r.lastErr() }

// Close stops reloading the files and waits until it has stopped; the
// configuration keeps the last ones loaded. It may be called more than
// once and always returns nil.
func (c *Client) Close() error { return c.r.close() }
