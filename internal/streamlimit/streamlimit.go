// Package streamlimit learns how many concurrent streams a server allows on
// one connection: the SETTINGS_MAX_CONCURRENT_STREAMS of the first SETTINGS
// frame the server sends (RFC 9113 §6.5.2). A balancer gives each SubConn's
// address a [Limit] ([WithLimit]); the client's transport credentials,
// wrapped by [Credentials], find it in the handshake's attributes and fill it
// in from the bytes the connection reads, after TLS if any. Only the first
// SETTINGS frame is read: later changes are not seen.
package streamlimit

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"sync/atomic"

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

// frame header and SETTINGS constants (RFC 9113 §4.1, §6.5).
const (
	headerLen         = 9
	typeSettings      = 0x4
	flagAck           = 0x1
	settingMaxStreams = 0x3
	// maxSettingsLen bounds the payload read: a SETTINGS frame longer
	// than this stops the scan (the limit stays unknown).
	maxSettingsLen = 6 * 64
)

// Conn scans the bytes read for the server's first SETTINGS frame. Read is
// called by one goroutine at a time (the transport's reader), as for any
// net.Conn read by one reader.
type Conn struct {
	net.Conn
	l    *Limit
	done bool
	buf  []byte // bytes of the frame read so far
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.done && n > 0 {
		c.scan(p[:n])
	}
	return n, err
}

// scan adds b to the frame being read and records the limit once the
// server's first frame, which must be a SETTINGS frame (RFC 9113 §3.4), is
// complete. Anything else stops the scan: the transport reports the error.
func (c *Conn) scan(b []byte) {
	if len(c.buf) < headerLen {
		take := min(headerLen-len(c.buf), len(b))
		c.buf = append(c.buf, b[:take]...)
		b = b[take:]
		if len(c.buf) < headerLen {
			return
		}
		l := int(c.buf[0])<<16 | int(c.buf[1])<<8 | int(c.buf[2])
		if c.buf[3] != typeSettings || c.buf[4]&flagAck != 0 || l > maxSettingsLen || l%6 != 0 {
			c.stop()
			return
		}
	}
	need := headerLen + (int(c.buf[0])<<16 | int(c.buf[1])<<8 | int(c.buf[2]))
	take := min(need-len(c.buf), len(b))
	c.buf = append(c.buf, b[:take]...)
	if len(c.buf) == need {
		c.record(c.buf[headerLen:])
		c.stop()
	}
}

func (c *Conn) record(payload []byte) {
	v := uint32(math.MaxUint32)
	for i := 0; i+6 <= len(payload); i += 6 {
		if binary.BigEndian.Uint16(payload[i:]) == settingMaxStreams {
			v = binary.BigEndian.Uint32(payload[i+2:])
		}
	}
	c.l.Set(v)
}

func (c *Conn) stop() {
	c.done = true
	c.buf = nil
}
