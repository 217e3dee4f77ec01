package faultsuite

import (
	"net"
	"sync"
	"time"
)

// proxy is an in-process TCP proxy between the client and one server, for
// network faults: added latency (a delay line: throughput is unchanged),
// a cut (every connection closed; new ones are accepted), and a black hole
// (nothing is forwarded, connections stay open; what was held flows once it
// heals, as after a network partition). We wrote a small one rather than
// embed toxiproxy: these three faults are all the suite needs, it runs on
// any machine without privileges (tc netem needs network namespaces and
// root), and it adds no dependency.
type proxy struct {
	lis    net.Listener
	target chan string // receives the server's address once; then closed

	mu      sync.Mutex
	addr    string
	delay   time.Duration
	paused  bool
	changed chan struct{} // closed and replaced on every change
	conns   map[net.Conn]struct{}
	closed  bool
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup
}

func newProxy() (*proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{lis: lis, target: make(chan string, 1), changed: make(chan struct{}), conns: map[net.Conn]struct{}{},
		done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial.
func (p *proxy) Addr() string { return p.lis.Addr().String() }

// SetTarget sets the server's address; connections accepted before wait.
func (p *proxy) SetTarget(addr string) { p.target <- addr }

func (p *proxy) set(f func()) {
	p.mu.Lock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Delay adds d to every byte's trip, each way.
func (p *proxy) Delay(d time.Duration) { p.set(func() { p.delay = d }) }

// Pause stops forwarding (a black hole) until Resume.
func (p *proxy) Pause() { p.set(func() { p.paused = true }) }

// Resume forwards again, what was held first.
func (p *proxy) Resume() { p.set(func() { p.paused = false }) }

// Cut closes every connection.
func (p *proxy) Cut() {
	p.set(func() {
		for c := range p.conns {
			_ = c.Close()
		}
	})
}

// Close stops the proxy and waits for its goroutines.
func (p *proxy) Close() {
	p.mu.Lock()
	already := p.closed
	p.mu.Unlock()
	if already {
		return
	}
	p.set(func() { p.closed = true })
	close(p.done)
	_ = p.lis.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	if addr == "" {
		select {
		case a, ok := <-p.target:
			p.mu.Lock()
			if ok { // the first to learn it tells the others
				p.addr = a
				close(p.target)
			}
			addr = p.addr
			p.mu.Unlock()
		case <-p.done:
			return
		}
	}
	s, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	if !p.track(s) {
		return
	}
	defer p.untrack(s)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(s, c) }()
	go func() { defer wg.Done(); p.pipe(c, s) }()
	wg.Wait()
}

type chunk struct {
	b  []byte
	at time.Time
}

// pipe copies src to dst through the delay line: a reader queues chunks
// stamped with their arrival, a writer sends each once its delay has
// passed and the proxy is not paused.
func (p *proxy) pipe(dst, src net.Conn) {
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(q)
		for {
			b := make([]byte, 32<<10)
			n, err := src.Read(b)
			if n > 0 {
				select {
				case q <- chunk{b[:n], time.Now()}:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(done)
		_ = dst.Close()
		_ = src.Close()
		for range q { // let the reader finish
		}
	}()
	for c := range q {
		for {
			p.mu.Lock()
			paused, delay, changed, closed := p.paused, p.delay, p.changed, p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if !paused {
				wait := time.Until(c.at.Add(delay))
				if wait <= 0 {
					break
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-changed:
					t.Stop()
				}
				continue
			}
			<-changed
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}
