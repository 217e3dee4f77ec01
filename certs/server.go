package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
)

// Server is a server's TLS configuration whose certificate, and client CA
// bundle if any, come from PEM files and are reloaded when the files
// change. Its Config goes to grpckit.WithTLS. Close stops the reloading.
type Server struct {
	r    reloader
	cur  atomic.Pointer[tls.Config] // what a handshake uses, never modified once stored
	mtls bool
}

// NewServer loads the certificate chain in certFile and its private key in
// keyFile (PEM) and starts reloading them. With [WithClientCA] the server
// requires and verifies client certificates (mutual TLS). It fails if the
// files do not load or an option is invalid.
func NewServer(certFile, keyFile string, opts ...ServerOption) (*Server, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("certs: NewServer: empty file name")
	}
	c, err := newConfig(func(c *config) {
		for _, o := range opts {
			o.applyServer(c)
		}
	})
	if err != nil {
		return nil, err
	}
	s := &Server{mtls: c.clientCA != ""}
	files := []string{certFile, keyFile}
	if s.mtls {
		files = append(files, c.clientCA)
	}
	s.r = reloader{what: "server", files: files, load: s.load, interval: c.interval, logger: c.logger}
	if err := s.r.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// load builds the configuration of new handshakes from the files'
// contents: certificate, key and, for mutual TLS, the client CA bundle.
func (s *Server) load(contents [][]byte) error {
	cert, err := keyPair(contents[0], contents[1])
	if err != nil {
		return err
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2"},
	}
	if s.mtls {
		pool, err := caPool(contents[2])
		if err != nil {
			return fmt.Errorf("client CA: %w", err)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
	}
	// A new Config also means new session ticket keys (crypto/tls makes
	// them per Config): a resumed session skips the verification of the
	// client's certificate, so sessions from before a reload must not be
	// resumed after it.
	s.cur.Store(cfg)
	return nil
}

// Config returns a configuration for grpckit.WithTLS (or
// credentials.NewTLS) that serves, in each handshake, the certificate
// and client CA bundle last loaded. Each call returns a new *tls.Config;
// all of them follow the reloads.
func (s *Server) Config() *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &s.cur.Load().Certificates[0], nil
		},
	}
	if s.mtls {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// Certificate returns the leaf certificate that new handshakes present.
func (s *Server) Certificate() *x509.Certificate {
	return s.cur.Load().Certificates[0].Leaf
}

// Err returns the error of the last reload, nil if it succeeded. While it
// is not nil the server keeps presenting the last good certificate.
func (s *Server) Err() error { return s.r.lastErr() }

// Close stops reloading the files and waits until it has stopped; the
// configuration keeps serving the last certificate loaded. It may be
// called more than once and always returns nil.
func (s *Server) Close() error { return s.r.close() }
