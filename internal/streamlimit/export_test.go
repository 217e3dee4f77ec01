package streamlimit

import (
	"io"
	"net"
)

// NewTestConn returns a Conn reading from r.
func NewTestConn(r io.Reader, l *Limit) *Conn {
	return &Conn{Conn: readerConn{r: r}, l: l}
}

// readerConn is a net.Conn that only reads.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }
