package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

// record is one call of the load.
type record struct {
	intended, start, end time.Time
	code                 codes.Code
	peer                 string
}

// latency is measured from the intended send time, so that a stalled
// sender does not hide the stall (no coordinated omission).
func (r record) latency() time.Duration { return r.end.Sub(r.intended) }

// load sends open-loop load: Poisson arrivals at rate calls per second,
// each call on its own goroutine with a deadline counted from its
// intended send time.
type load struct {
	ec       echov1.EchoServiceClient
	rate     float64
	deadline atomic.Int64 // each call's deadline, a time.Duration: SetDeadline changes it for the calls sent after

	mu    sync.Mutex
	sched []time.Time // intended times of the calls sent
	recs  []record    // the calls ended

	stop chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func startLoad(cc grpc.ClientConnInterface, rate float64, deadline time.Duration, seed uint64) *load {
	l := &load{ec: echov1.NewEchoServiceClient(cc), rate: rate,
		stop: make(chan struct{}), done: make(chan struct{})}
	l.SetDeadline(deadline)
	go l.run(rand.New(rand.NewPCG(seed, seed+1)))
	return l
}

func (l *load) run(rng *rand.Rand) {
	defer close(l.done)
	next := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / l.rate * float64(time.Second)))
		t.Reset(time.Until(next))
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		l.sched = append(l.sched, next)
		l.mu.Unlock()
		l.wg.Add(1)
		go l.call(next, time.Duration(l.deadline.Load()))
	}
}

// SetDeadline sets the deadline of the calls sent from now on.
func (l *load) SetDeadline(d time.Duration) { l.deadline.Store(int64(d)) }

func (l *load) call(intended time.Time, deadline time.Duration) {
	defer l.wg.Done()
	ctx, cancel := context.WithDeadline(context.Background(), intended.Add(deadline))
	defer cancel()
	var p peer.Peer
	r := record{intended: intended, start: time.Now()}
	_, err := l.ec.Echo(ctx, &echov1.EchoRequest{Message: "fault suite"}, grpc.Peer(&p))
	r.end, r.code = time.Now(), status.Code(err)
	if p.Addr != nil {
		r.peer = p.Addr.String()
	}
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
}

// Stop stops sending and waits for the calls in flight.
func (l *load) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	l.wg.Wait()
}

// window returns the calls intended in [from, to).
func (l *load) window(from, to time.Time) []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []record
	for _, r := range l.recs {
		if !r.intended.Before(from) && r.intended.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// finishedBy reports whether every call intended before t has ended.
func (l *load) finishedBy(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	sent, ended := 0, 0
	for _, at := range l.sched {
		if at.Before(t) {
			sent++
		}
	}
	for _, r := range l.recs {
		if r.intended.Before(t) {
			ended++
		}
	}
	return sent == ended
}

// inFlightAt counts the calls in flight at t: started before it, ended
// after it.
func (l *load) inFlightAt(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.start.Before(t) && r.end.After(t) {
			n++
		}
	}
	return n
}

// stats summarizes calls.
type stats struct {
	calls    int
	failed   map[codes.Code]int
	nFailed  int
	p        [3]time.Duration // p50, p99, p99.9
	byPeer   map[string]int
	lastFail time.Time // latest intended time of a failed call
}

func summarize(rs []record) stats {
	s := stats{calls: len(rs), failed: map[codes.Code]int{}, byPeer: map[string]int{}}
	lat := make([]time.Duration, 0, len(rs))
	for _, r := range rs {
		lat = append(lat, r.latency())
		if r.code != codes.OK {
			s.failed[r.code]++
			s.nFailed++
			if r.intended.After(s.lastFail) {
				s.lastFail = r.intended
			}
		} else {
			s.byPeer[r.peer]++
		}
	}
	slices.Sort(lat)
	for i, q := range []float64{0.5, 0.99, 0.999} {
		if len(lat) > 0 {
			s.p[i] = lat[min(len(lat)-1, int(q*float64(len(lat))))]
		}
	}
	return s
}

// share returns the share of successful calls served by addr.
func (s stats) share(addr string) float64 {
	ok := s.calls - s.nFailed
	if ok == 0 {
		return 0
	}
	return float64(s.byPeer[addr]) / float64(ok)
}

func (s stats) codes() string {
	if s.nFailed == 0 {
		return "-"
	}
	var parts []string
	for c, n := range s.failed {
		parts = append(parts, fmt.Sprintf("%s:%d", c, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (s stats) percentiles() string {
	return fmt.Sprintf("%s/%s/%s", ms(s.p[0]), ms(s.p[1]), ms(s.p[2]))
}

func ms(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fms", float64(d)/1e6)
}
