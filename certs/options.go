package certs

import (
	"errors"
	"log/slog"
	"strings"
	"time"
)

// DefaultReloadInterval is how often the files are read to see whether
// they changed: see [WithReloadInterval].
const DefaultReloadInterval = 30 * time.Second

// ServerOption configures [NewServer].
type ServerOption interface{ applyServer(*config) }

// ClientOption configures [NewClient].
type ClientOption interface{ applyClient(*config) }

// Option configures [NewServer] and [NewClient] alike.
type Option interface {
	ServerOption
	ClientOption
}

type config struct {
	interval   time.Duration
	logger     *slog.Logger
	clientCA   string // server: CA bundle of client certificates
	ca         string // client: CA bundle of servers
	certFile   string // client: own certificate
	keyFile    string
	serverName string
	errs       []string
}

// newConfig applies options to the defaults and reports the invalid ones.
func newConfig(apply func(*config)) (*config, error) {
	c := &config{interval: DefaultReloadInterval}
	apply(c)
	if len(c.errs) > 0 {
		return nil, errors.New("certs: " + strings.Join(c.errs, "; "))
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c, nil
}

type serverOption func(*config)

func (f serverOption) applyServer(c *config) { f(c) }

type clientOption func(*config)

func (f clientOption) applyClient(c *config) { f(c) }

type bothOption func(*config)

func (f bothOption) applyServer(c *config) { f(c) }
func (f bothOption) applyClient(c *config) { f(c) }

// WithReloadInterval sets how often the files are read and compared with
// what was last loaded; changed files are loaded at once, without a
// restart. d must be positive. Default: [DefaultReloadInterval] (30 s).
func WithReloadInterval(d time.Duration) Option {
	return bothOption(func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, "WithReloadInterval: "+d.String()+" is not a positive interval")
			return
		}
		c.interval = d
	})
}

// WithLogger sets the logger of failed reloads (logged at Warn, once per
// new content of the files) and of successful ones (Info); nil is an
// error. Default: slog.Default() when NewServer or
// NewClient runs.
func WithLogger(l *slog.Logger) Option {
	return bothOption(func(c *config) {
		if l == nil {
			c.errs = append(c.errs, "WithLogger: nil logger")
			return
		}
		c.logger = l
	})
}

// WithClientCA makes the server require a client certificate that
// verifies against the CA bundle in caFile (PEM, one or more
// certificates): tls.RequireAndVerifyClientCert, mutual TLS. The bundle is
// reloaded like the server's certificate. Default: no client certificate
// is asked for.
func WithClientCA(caFile string) ServerOption {
	return serverOption(func(c *config) {
		if caFile == "" {
			c.errs = append(c.errs, "WithClientCA: empty file name")
			return
		}
		c.clientCA = caFile
	})
}

// WithCA makes the client verify servers against the CA bundle in caFile
// (PEM, one or more certificates) instead of the system's roots; the
// bundle is reloaded when the file changes. Default: the system's roots.
func WithCA(caFile string) ClientOption {
	return clientOption(func(c *config) {
		if caFile == "" {
			c.errs = append(c.errs, "WithCA: empty file name")
			return
		}
		c.ca = caFile
	})
}

// WithCertificate makes the client present the certificate in certFile
// with the private key in keyFile (both PEM) to servers that ask for one:
// mutual TLS. Both are reloaded when they change. Default: no client
// certificate.
func WithCertificate(certFile, keyFile string) ClientOption {
	return clientOption(func(c *config) {
		if certFile == "" || keyFile == "" {
			c.errs = append(c.errs, "WithCertificate: empty file name")
			return
		}
		c.certFile, c.keyFile = certFile, keyFile
	})
}

// WithServerName sets the name the server's certificate must be valid for
// (a DNS name or an IP address), and sends it as the TLS server name.
// Default: the host of the target the client dials, as grpc-go sends it
// in SNI; a target whose host is an IP address sends no SNI, so dialing
// one requires WithServerName (the handshake fails otherwise: the client
// never accepts a certificate it has not checked against a name).
func WithServerName(name string) ClientOption {
	return clientOption(func(c *config) {
		if name == "" {
			c.errs = append(c.errs, "WithServerName: empty name")
			return
		}
		c.serverName = name
	})
}
