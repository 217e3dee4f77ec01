package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

// rawConn is an HTTP/2 client that does what a hostile one would: it
// ignores the server's settings.
type rawConn struct {
	t        *testing.T
	c        net.Conn
	fr       *http2.Framer
	enc      *hpack.Encoder
	dec      *hpack.Decoder
	buf      bytes.Buffer
	settings map[http2.SettingID]uint32
}

// dialRaw connects, exchanges prefaces and settings, and returns the
// connection with the server's settings.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := &rawConn{t: t, c: c, settings: map[http2.SettingID]uint32{}}
	r.fr = http2.NewFramer(c, c)
	r.fr.ReadMetaHeaders = nil
	r.enc = hpack.NewEncoder(&r.buf)
	r.dec = hpack.NewDecoder(4096, nil)
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's settings: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			_ = sf.ForeachSetting(func(s http2.Setting) error {
				r.settings[s.ID] = s.Val
				return nil
			})
			if err := r.fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
}

// headers opens stream id for method with extra metadata, splitting the
// block into CONTINUATION frames as HTTP/2 requires.
func (r *rawConn) headers(id uint32, method string, extra []hpack.HeaderField, endStream bool) {
	r.t.Helper()
	r.buf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method}, {Name: ":authority", Value: "test"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	}, extra...) {
		_ = r.enc.WriteField(f)
	}
	block := r.buf.Bytes()
	const max = 16384
	first := block[:min(len(block), max)]
	block = block[len(first):]
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first,
		EndStream: endStream, EndHeaders: len(block) == 0}); err != nil {
		r.t.Fatal(err)
	}
	for len(block) > 0 {
		n := min(len(block), max)
		if err := r.fr.WriteContinuation(id, n == len(block), block[:n]); err != nil {
			r.t.Fatal(err)
		}
		block = block[n:]
	}
}

// message sends one gRPC message on stream id and ends the stream.
func (r *rawConn) message(id uint32, m proto.Message) {
	r.t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	frame := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(b)))
	copy(frame[5:], b)
	if err := r.fr.WriteData(id, true, frame); err != nil {
		r.t.Fatal(err)
	}
}

// event is what the server did to a stream: reset it, or end it with
// trailers carrying grpc-status.
type event struct {
	stream     uint32
	rst        http2.ErrCode
	grpcStatus string
}

// next reads frames until the server resets or ends a stream, and fails
// on GOAWAY or a closed connection.
func (r *rawConn) next() event {
	r.t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("connection: got %v, want it open", err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			r.t.Fatalf("got GOAWAY %v %q, want the connection kept", f.ErrCode, f.DebugData())
		case *http2.RSTStreamFrame:
			return event{stream: f.StreamID, rst: f.ErrCode}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = r.fr.WritePing(true, f.Data)
			}
		case *http2.HeadersFrame:
			fields, err := r.dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				r.t.Fatal(err)
			}
			if f.StreamEnded() {
				ev := event{stream: f.StreamID}
				for _, hf := range fields {
					if hf.Name == "grpc-status" {
						ev.grpcStatus = hf.Value
					}
				}
				return ev
			}
		}
	}
}

// repeatedField is n copies of one 1 KiB field: HPACK sends the copies as
// references to its dynamic table, so a header list of n KiB fits in one
// small frame.
func repeatedField(n int) []hpack.HeaderField {
	f := hpack.HeaderField{Name: "x-pad", Value: strings.Repeat("v", 1<<10)}
	out := make([]hpack.HeaderField, n)
	for i := range out {
		out[i] = f
	}
	return out
}

const (
	echoPath = "/grpckit.echo.v1.EchoService/Echo"
	bidiPath = "/grpckit.echo.v1.EchoService/BidiStream"
)

// The server advertises its limits in its first SETTINGS frame.
func TestAdvertisedLimits(t *testing.T) {
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register)
	r := dialRaw(t, in.Addr)
	for _, tc := range []struct {
		id   http2.SettingID
		want uint32
	}{
		{http2.SettingMaxConcurrentStreams, server.DefaultMaxConcurrentStreams},
		{http2.SettingMaxHeaderListSize, server.DefaultMaxHeaderListSize},
		{http2.SettingInitialWindowSize, server.DefaultStreamWindow},
	} {
		if got, ok := r.settings[tc.id]; !ok || got != tc.want {
			t.Errorf("%v: got %d (sent: %v), want %d", tc.id, got, ok, tc.want)
		}
	}
}

// A client that opens more streams than the server allows is refused the
// extra ones (REFUSED_STREAM), and the connection and its other streams
// stay up.
func TestStreamLimitRefusesExtraStreams(t *testing.T) {
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register)
	r := dialRaw(t, in.Addr)
	// Bidi streams whose handlers wait for a first message: all stay open.
	var id uint32 = 1
	for range server.DefaultMaxConcurrentStreams {
		r.headers(id, bidiPath, nil, false)
		id += 2
	}
	extra := id
	r.headers(extra, bidiPath, nil, false)
	if ev := r.next(); ev.stream != extra || ev.rst != http2.ErrCodeRefusedStream {
		t.Fatalf("stream %d past the limit: got %+v, want RST_STREAM REFUSED_STREAM on it", extra, ev)
	}
	// Ending one open stream frees a slot, and a unary call goes through.
	if err := r.fr.WriteData(1, true, nil); err != nil {
		t.Fatal(err)
	}
	if ev := r.next(); ev.stream != 1 || ev.grpcStatus != "0" {
		t.Fatalf("ended stream 1: got %+v, want grpc-status 0", ev)
	}
	r.headers(extra+2, echoPath, nil, false)
	r.message(extra+2, &echov1.EchoRequest{Message: "hi"})
	if ev := r.next(); ev.stream != extra+2 || ev.grpcStatus != "0" {
		t.Fatalf("unary call after a slot freed: got %+v, want grpc-status 0", ev)
	}
}

// Metadata over the limit fails its own call and nothing else: a gRPC
// client refuses to send it, and a client that sends it anyway gets that
// stream reset while its other calls on the connection go on. (A header
// block that exceeds the limit and goes on in CONTINUATION frames closes
// the connection: golang.org/x/net/http2's defence against CONTINUATION
// floods, which grpc-go uses; only a client that ignores the advertised
// limit sends one.)
func TestOversizedMetadataFailsOnlyItsCall(t *testing.T) {
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register)
	t.Run("grpc client", func(t *testing.T) {
		c := echov1.NewEchoServiceClient(in.Dial(t))
		ctx := grpckittest.Context(t, 30*time.Second)
		stream, err := c.BidiStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip := func(msg string) {
			t.Helper()
			if err := stream.Send(&echov1.BidiStreamRequest{Message: msg}); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatalf("stream after %q: got %v, want the echo", msg, err)
			}
		}
		roundTrip("before")
		big := metadata.AppendToOutgoingContext(ctx, "x-big", strings.Repeat("v", 8<<10), "x-big2", strings.Repeat("v", 9<<10))
		_, err = c.Echo(big, &echov1.EchoRequest{Message: "hi"})
		if code := status.Code(err); code == codes.OK || code == codes.Unavailable {
			t.Fatalf("call with 17 KiB of metadata: got %v, want it refused on its own (not OK, not Unavailable)", err)
		}
		roundTrip("after")
		if _, err := c.Echo(ctx, &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatalf("next call: got %v, want success", err)
		}
	})
	t.Run("raw client", func(t *testing.T) {
		r := dialRaw(t, in.Addr)
		r.headers(1, echoPath, repeatedField(24), false) // 24 KiB of metadata in one frame
		if ev := r.next(); ev.stream != 1 || ev.rst == http2.ErrCodeNo {
			t.Fatalf("oversized header list: got %+v, want RST_STREAM on stream 1", ev)
		}
		r.headers(3, echoPath, nil, false)
		r.message(3, &echov1.EchoRequest{Message: "hi"})
		if ev := r.next(); ev.stream != 3 || ev.grpcStatus != "0" {
			t.Fatalf("next call on the same connection: got %+v, want grpc-status 0", ev)
		}
	})
}

// A connection that never sends the HTTP/2 preface is closed after the
// handshake timeout (grpc-go's own default keeps it 120 s).
func TestSilentConnectionClosed(t *testing.T) {
	t.Parallel()
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register)
	c, err := net.Dial("tcp", in.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(server.DefaultConnectionTimeout + 50*time.Second))
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("silent connection: still open after %v, want closed after %v", server.DefaultConnectionTimeout+50*time.Second, server.DefaultConnectionTimeout)
	}
}

// With WithMaxConnections(n), the n+1st connection is served only once
// one of the first n closes.
func TestMaxConnections(t *testing.T) {
	in := grpckittest.NewServer(t, new(grpckittest.Backend).Register, server.WithMaxConnections(2))
	first := dialRaw(t, in.Addr)
	_ = dialRaw(t, in.Addr)
	c, err := net.Dial("tcp", in.Addr) // waits in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	_ = fr.WriteSettings()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, err := fr.ReadFrame(); err == nil {
		t.Fatalf("third connection while two are open: got %v, want no answer", f)
	}
	_ = first.c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatalf("third connection after one closed: got %v, want the server's settings", err)
	}
	if _, err := server.New(server.WithMaxConnections(-1)); err == nil {
		t.Error("WithMaxConnections(-1): got no error, want one")
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A client that opens server streams and never reads them (never opens
// its flow-control window) holds a bounded amount of server memory: the
// stream limit refuses most streams, and each admitted one holds at most
// grpc-go's write quota plus a message. Closing the connection gives back
// goroutines and memory. (Before the stream limit, all 1,000 streams were
// admitted; the issue measured about 270 MiB held for 1,000.)
func TestNonReadingClientIsBounded(t *testing.T) {
	srv := &bigStreamer{}
	addr := grpckittest.NewServer(t, func(r grpc.ServiceRegistrar) { echov1.RegisterEchoServiceServer(r, srv) }).Addr
	baseGoroutines := runtime.NumGoroutine()
	baseHeap := heapInUse()
	r := dialRaw(t, addr)
	const streams = 1000
	for i := range streams {
		id := uint32(2*i + 1)
		r.headers(id, "/grpckit.echo.v1.EchoService/ServerStream", nil, false)
		r.message(id, &echov1.ServerStreamRequest{Count: 1000})
	}
	refused := 0
	for refused < streams-server.DefaultMaxConcurrentStreams {
		ev := r.next()
		if ev.rst != http2.ErrCodeRefusedStream {
			t.Fatalf("got %+v, want only REFUSED_STREAM resets", ev)
		}
		refused++
	}
	wait.For(t, 30*time.Second, "the admitted streams' handlers", func() bool {
		return srv.calls.Load() == server.DefaultMaxConcurrentStreams
	})
	// Let the handlers fill what flow control lets them queue.
	var held uint64
	last := uint64(0)
	wait.Poll(10*time.Second, func() bool {
		time.Sleep(100 * time.Millisecond)
		h := heapInUse()
		if h > baseHeap {
			held = h - baseHeap
		}
		stable := h < last+(1<<20)
		last = h
		return stable
	})
	if limit := uint64(48 << 20); held > limit {
		t.Errorf("heap held by %d non-reading streams: got %d MiB, want under %d MiB", streams, held>>20, limit>>20)
	}
	t.Logf("heap held: %.1f MiB", float64(held)/(1<<20))
	_ = r.c.Close()
	wait.For(t, 30*time.Second, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseGoroutines
	})
}

// bigStreamer answers ServerStream with Count messages of 16 KiB.
type bigStreamer struct {
	echov1.UnimplementedEchoServiceServer
	calls atomic.Int64
}

func (b *bigStreamer) ServerStream(req *echov1.ServerStreamRequest, stream echov1.EchoService_ServerStreamServer) error {
	b.calls.Add(1)
	payload := strings.Repeat("p", 16<<10)
	for i := range req.GetCount() {
		if err := stream.Send(&echov1.ServerStreamResponse{Message: payload, Index: i}); err != nil {
			return err
		}
	}
	return nil
}
