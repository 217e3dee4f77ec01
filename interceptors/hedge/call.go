package hedge

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/internal/pickhint"
)

// UnaryClientInterceptor hedges the unary calls of the methods h hedges.
// The first attempt runs on the caller's goroutine and writes the caller's
// reply; each hedge runs on its own goroutine with its own reply message,
// merged into the caller's if it wins. The interceptor returns only once
// every attempt it started has ended.
func UnaryClientInterceptor(h *Hedger) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		msg, ok := reply.(proto.Message)
		if !ok || !h.Hedged(method) {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		h.budget.Fill()
		m := h.stats(method)
		m.calls.Add(1)
		c := &call{h: h, method: method, req: req, reply: msg, typ: msg.ProtoReflect().Type(), cc: cc,
			invoker: invoker, opts: opts, parent: ctx, stats: m, win: m.win, winner: -1}
		return c.run()
	}
}

// call is one hedged call.
type call struct {
	h       *Hedger
	method  string
	req     any
	reply   proto.Message
	cc      *grpc.ClientConn
	invoker grpc.UnaryInvoker
	opts    []grpc.CallOption
	parent  context.Context
	typ     protoreflect.MessageType // of reply, read before any attempt writes it
	stats   *methodStats
	win     *window // nil: fixed delay
	start   time.Time

	hints [MaxAttemptsLimit]pickhint.Hint
	wg    sync.WaitGroup // the hedges' goroutines

	mu       sync.Mutex
	timer    *time.Timer
	cancels  [MaxAttemptsLimit]context.CancelFunc
	launched int
	inflight int
	stopped  bool // no more hedges: a breaker refused one, or the budget is spent
	decided  bool
	done     chan struct{} // closed when decided
	winner   int           // the attempt that answered; -1: none
	winOut   *outputs      // the winning hedge's reply and call options' outputs
	err      error         // the call's error when no attempt answered
}

// outputs is what a hedge writes that the caller must see if it wins.
type outputs struct {
	reply   proto.Message
	header  metadata.MD
	trailer metadata.MD
	peer    peer.Peer
}

func (c *call) run() error {
	if c.win != nil {
		c.start = time.Now()
	}
	ctx, cancel := context.WithCancel(c.parent)
	defer cancel()
	c.cancels[0] = cancel
	c.launched, c.inflight = 1, 1
	c.done = make(chan struct{})
	c.mu.Lock()
	c.timer = time.AfterFunc(c.h.delay(c.win), c.hedge)
	c.mu.Unlock()

	err := c.invoker(pickhint.NewContext(ctx, &c.hints[0]), c.method, c.req, c.reply, c.cc, c.opts...)

	c.mu.Lock()
	c.inflight--
	lost := c.decided // a hedge answered or failed the call: it cancelled this attempt
	if !lost {
		switch {
		case err == nil:
			c.decide(0, nil, nil)
		case c.fatal(err) || c.inflight == 0:
			c.decide(-1, nil, err)
		default: // wait for the hedges in flight
			c.keep(err)
			if errors.Is(err, breaker.ErrRejected) {
				c.stop()
			}
		}
	}
	c.mu.Unlock()
	<-c.done
	c.wg.Wait()

	// The first attempt's latency: measured if it answered, a lower bound
	// if a hedge won over it; none if it failed.
	if c.win != nil && (c.winner == 0 || c.winner > 0 && lost) {
		c.win.add(time.Since(c.start), c.h.cfg.pct)
	}
	switch {
	case c.winner == 0:
		return nil
	case c.winner > 0:
		c.copyOut()
		return nil
	}
	return c.err
}

// fatal reports whether an attempt's error ends the call at once: any
// error but Unavailable (the server did not process the call, another
// attempt may still answer). The caller's own cancellation or deadline is
// fatal.
func (c *call) fatal(err error) bool {
	return c.parent.Err() != nil || status.Code(err) != codes.Unavailable
}

// keep remembers err as the call's error unless one is kept already; a
// breaker's rejection gives way to a backend's error.
func (c *call) keep(err error) {
	if c.err == nil || errors.Is(c.err, breaker.ErrRejected) {
		c.err = err
	}
}

// stop stops hedging this call.
func (c *call) stop() {
	c.stopped = true
	c.timer.Stop()
}

// decide ends the call: attempt winner answered (out holds a hedge's
// outputs), or none did and err ended it (a fatal error, or the last
// attempt's). It cancels the other attempts. c.mu is held.
func (c *call) decide(winner int, out *outputs, err error) {
	c.decided, c.winner, c.winOut = true, winner, out
	switch {
	case winner >= 0:
	case c.fatal(err) && !errors.Is(err, breaker.ErrRejected):
		c.err = err // the error that ended the call
	default:
		c.keep(err) // the last attempt failed: the first error a server gave
	}
	c.timer.Stop()
	for i := range c.launched {
		if i != winner && c.cancels[i] != nil {
			if winner >= 0 {
				c.hints[i].MarkLost() // slower than the winner: let the balancer see it
			}
			c.cancels[i]()
		}
	}
	close(c.done)
}

// hedge starts the next attempt, when the delay has passed without an
// answer. It runs on the timer's goroutine and makes the attempt there.
func (c *call) hedge() {
	c.mu.Lock()
	if c.decided || c.stopped || c.launched >= c.h.cfg.maxAttempts || c.parent.Err() != nil {
		c.mu.Unlock()
		return
	}
	if !c.h.budget.Spend() {
		c.stopped = true
		c.mu.Unlock()
		c.stats.exhst.add()
		return
	}
	n := c.launched
	c.launched++
	c.inflight++
	c.wg.Add(1)
	defer c.wg.Done()
	// Avoid the endpoints the attempts before went to.
	avoid := make([]string, 0, n)
	for i := range n {
		if a := c.hints[i].Picked(); a != "" {
			avoid = append(avoid, a)
		}
	}
	c.hints[n].Avoid = avoid
	ctx, cancel := context.WithCancel(c.parent)
	defer cancel()
	c.cancels[n] = cancel
	if c.launched < c.h.cfg.maxAttempts {
		c.timer.Reset(c.h.delay(c.win))
	}
	c.mu.Unlock()

	c.stats.sent.add()
	event(c.parent, "hedge.sent", n)
	out := &outputs{reply: c.typ.New().Interface()}
	err := c.invoker(pickhint.NewContext(ctx, &c.hints[n]), c.method, c.req, out.reply, c.cc, out.callOptions(c.opts)...)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if c.decided {
		return
	}
	switch {
	case err == nil:
		c.decide(n, out, nil)
		c.stats.won.add()
		event(c.parent, "hedge.won", n)
	case errors.Is(err, breaker.ErrRejected):
		// Not sent: the breaker is open (or half-open and probing). No
		// more hedges; the attempts in flight go on.
		c.stop()
		c.keep(err)
		if c.inflight == 0 {
			c.decide(-1, nil, err)
		}
	case c.fatal(err) || c.inflight == 0:
		c.decide(-1, nil, err)
	default:
		c.keep(err)
	}
}

// callOptions returns opts with the options that write into the caller's
// variables (grpc.Header, grpc.Trailer, grpc.Peer) pointed at o instead:
// the first attempt writes the caller's, a winning hedge's are copied over
// once the first attempt has ended.
func (o *outputs) callOptions(opts []grpc.CallOption) []grpc.CallOption {
	var own []grpc.CallOption
	for i, opt := range opts {
		var r grpc.CallOption
		switch opt.(type) {
		case grpc.HeaderCallOption:
			r = grpc.Header(&o.header)
		case grpc.TrailerCallOption:
			r = grpc.Trailer(&o.trailer)
		case grpc.PeerCallOption:
			r = grpc.Peer(&o.peer)
		default:
			continue
		}
		if own == nil {
			own = append([]grpc.CallOption(nil), opts...)
		}
		own[i] = r
	}
	if own == nil {
		return opts
	}
	return own
}

// copyOut copies the winning hedge's reply and outputs to the caller's.
func (c *call) copyOut() {
	o := c.winOut
	proto.Reset(c.reply)
	proto.Merge(c.reply, o.reply)
	for _, opt := range c.opts {
		switch v := opt.(type) {
		case grpc.HeaderCallOption:
			*v.HeaderAddr = o.header
		case grpc.TrailerCallOption:
			*v.TrailerAddr = o.trailer
		case grpc.PeerCallOption:
			*v.PeerAddr = o.peer
		}
	}
}

// event adds a span event to the call's span, if it is recording.
func event(ctx context.Context, name string, attempt int) {
	if s := trace.SpanFromContext(ctx); s.IsRecording() {
		s.AddEvent(name, trace.WithAttributes(attribute.Int("hedge.attempt", attempt)))
	}
}
