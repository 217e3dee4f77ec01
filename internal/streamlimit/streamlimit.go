// Package streamlimit learns how many concurrent streams a server allows on
// one connection: the SETTINGS_MAX_CONCURRENT_STREAMS of the first SETTINGS
// frame the server sends (RFC 9113 §6.5.2). A balancer gives each SubConn's
// address a [Limit] ([WithLimit]); the client's transport credentials,
// wrapped by [Credentials], find it in the handshake's attributes and fill it
// in from the bytes the connection reads, after TLS if any. Only the first
// SETTINGS frame is read: later changes are not seen.
package streamlimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"sync/atomic"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/resolver"
)

// Limit is a connection's stream limit as the server advertised it.
type Limit struct {
	v atomic.Uint32 // 0 until known
}

// Get returns the advertised limit: 0 while unknown, math.MaxUint32 when
// the server sent no limit (unlimited).
func (l *Limit) Get() uint32 { return l.v.Load() }

// Set records v; tests use it directly.
func (l *Limit) Set(v uint32) {
	if v == 0 {
		v = 1 // a server may advertise 0 (no new streams): treat as one, not unknown
	}
	l.v.Store(v)
}

type key struct{}

// WithLimit returns a with l in its attributes.
func WithLimit(a resolver.Address, l *Limit) resolver.Address {
	a.Attributes = a.Attributes.WithValue(key{}, l)
	return a
}

// Credentials wraps c so that connections to addresses carrying a [Limit]
// record the server's stream limit in it. Others are returned unwrapped.
func Credentials(c credentials.TransportCredentials) credentials.TransportCredentials {
	if _, ok := c.(*creds); ok {
		return c
	}
	return &creds{c}
}

type creds struct {
	credentials.TransportCredentials
}

func (c *creds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		return conn, info, err
	}
	attrs := credentials.ClientHandshakeInfoFromContext(ctx).Attributes
	l, _ := attrs.Value(key{}).(*Limit)
	if l == nil {
		return conn, info, nil
	}
	return &Conn{Conn: conn, l: l}, info, nil
}

func (c *creds) Clone() credentials.TransportCredentials {
	return &creds{c.TransportCredentials.Clone()}
}

// maxFrameLen bounds the bytes buffered for the server's first frame: a
// SETTINGS frame of 64 settings. A longer frame stops the scan (the limit
// stays unknown).
const maxFrameLen = 9 + 6*64

// Conn scans the bytes read for the server's first SETTINGS frame. Read is
// called by one goroutine at a time (the transport's reader), as for any
// net.Conn read by one reader.
type Conn struct {
	net.Conn
	l    *Limit
	done bool
	buf  []byte // the bytes of the first frame read so far
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.done && n > 0 {
		c.scan(p[:n])
	}
	return n, err
}

// scan adds b to the bytes of the server's first frame, which must be a
// SETTINGS frame (RFC 9113 §3.4), and, once x/net/http2's framer reads the
// whole frame from them, records its SETTINGS_MAX_CONCURRENT_STREAMS (or
// no limit). Anything else stops the scan: the transport reports the error.
func (c *Conn) scan(b []byte) {
	c.buf = append(c.buf, b[:min(len(b), maxFrameLen-len(c.buf))]...)
	f, err := http2.NewFramer(nil, bytes.NewReader(c.buf)).ReadFrame()
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if len(c.buf) == maxFrameLen {
			c.stop() // longer than any SETTINGS frame we read
		}
		return
	case err != nil:
		c.stop()
		return
	}
	if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
		v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
		if !ok {
			v = math.MaxUint32
		}
		c.l.Set(v)
	}
	c.stop()
}

func (c *Conn) stop() {
	c.done = true
	c.buf = nil
}
