// Package certs builds the *tls.Config of a server or a client from PEM
// files, and reloads the files when they change, without a restart: what
// cert-manager, Vault agent, SPIRE or a Kubernetes Secret volume renew,
// new handshakes use. The configurations go to grpckit.WithTLS, on
// server.New and client.New alike:
//
//	// TLS; with WithClientCA, mutual TLS (tls.RequireAndVerifyClientCert).
//	serverTLS, err := certs.NewServer("tls.crt", "tls.key", certs.WithClientCA("ca.crt"))
//	defer serverTLS.Close()
//	srv, err := server.New(grpckit.WithTLS(serverTLS.Config()))
//
//	// Verify the server against ca.crt (the system's roots without WithCA);
//	// with WithCertificate, present a client certificate.
//	clientTLS, err := certs.NewClient(certs.WithCA("ca.crt"), certs.WithCertificate("tls.crt", "tls.key"))
//	defer clientTLS.Close()
//	conn, err := client.New("dns:///orders.internal:443", grpckit.WithTLS(clientTLS.Config()))
//
// # Reloading
//
// NewServer and NewClient load the files once, and fail if they do not
// load. Then a goroutine of their own reads the files every reload
// interval ([WithReloadInterval], default [DefaultReloadInterval], 30 s)
// and, if their content changed, loads them; new handshakes use the new
// certificates, connections already open keep theirs. Close stops the
// goroutine and waits for it.
//
// The files are polled rather than watched with fsnotify, because
// polling by path is right in every way files get replaced: written in
// place, renamed over, or swapped the way Kubernetes updates a Secret
// volume (the files are symlinks through a ..data symlink to a
// timestamped directory, and the kubelet replaces ..data with a rename).
// An inotify (fsnotify) watch on a file follows its inode: after the
// swap it reports at most the removal of the old file, then watches
// nothing unless re-added, and no write event ever comes; a watch on the
// directory needs event filtering, re-watching after renames and a
// fallback for file systems without events (NFS, FUSE). Reading three
// small files and comparing them with the last ones takes about 30 µs
// (BenchmarkPoll) every 30 s, needs no dependency, and the delay is small
// next to how early certificates are renewed (cert-manager: a third of
// their lifetime before expiry) and to the kubelet's own delay in
// updating a volume (up to a minute or two).
//
// Files that do not load (half written, a key that does not match the
// certificate, a CA bundle ending in garbage) change nothing: the last
// good certificates stay in use, the error is logged once at Warn (see
// [WithLogger]) and returned by Err until files that load replace them.
// A certificate and its key written one after the other may be read
// mismatched in between; the next poll loads the pair.
//
// # Verification
//
// The server verifies client certificates with crypto/tls
// (RequireAndVerifyClientCert) against the client CA bundle last loaded;
// each reload builds a new configuration, with new session ticket keys,
// so that a session from before a reload is never resumed after it (a
// resumed session skips the verification of the client's certificate).
//
// A client's RootCAs is fixed in the *tls.Config, which grpc-go copies
// when the credentials are built, and a crypto/tls client has no
// GetConfigForClient. To follow a new CA bundle, the client's
// configuration sets InsecureSkipVerify and verifies in VerifyConnection
// what crypto/tls verifies otherwise: the chain against the bundle last
// loaded, server authentication, expiry, and the server name. The name
// is the TLS server name (SNI) the handshake sent: the target's host, as
// grpc-go sets it, or [WithServerName]'s. TLS sends no IP address as a
// server name, so a client that dials an IP address needs
// WithServerName (an IP address or a DNS name of the certificate); the
// handshake fails without it rather than accept an unchecked name.
package certs
