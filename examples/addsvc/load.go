package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/interceptors/breaker"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

// Load: open-loop Poisson arrivals, each call's latency measured from the
// time it was due (so that a stalled client cannot hide latency).
const (
	sumRate    = 200.0 // Sum calls per second, all the time
	concatRate = 40.0  // Concat calls per second, in the breaker phases
)

// tally counts one method's calls in a phase.
type tally struct {
	calls, ok int
	codes     map[codes.Code]int
	rejected  int // failed by the client's open breaker, never sent
	lats      []time.Duration
	share     []int // successful calls by slot
}

func newTally(n int) tally { return tally{codes: make(map[codes.Code]int), share: make([]int, n)} }

func (t *tally) add(code codes.Code, rejected bool, lat time.Duration, slot int) {
	t.calls++
	t.codes[code]++
	t.lats = append(t.lats, lat)
	if rejected {
		t.rejected++
	}
	if code == codes.OK {
		t.ok++
		if slot >= 0 {
			t.share[slot]++
		}
	}
}

// codeList spells the codes seen as one word: "OK=598,Unavailable=2".
func (t *tally) codeList() string {
	if t.calls == 0 {
		return "-"
	}
	cs := make([]codes.Code, 0, len(t.codes))
	for c := range t.codes {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s=%d", c, t.codes[c]))
	}
	return strings.Join(parts, ",")
}

func (t *tally) quantile(q float64) time.Duration {
	if len(t.lats) == 0 {
		return 0
	}
	s := slices.Clone(t.lats)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// phase is one stretch of the demo: the calls issued during it.
type phase struct {
	name   string
	start  time.Time
	end    time.Time
	wg     sync.WaitGroup // calls issued in the phase and not done
	mu     sync.Mutex
	sum    tally
	concat tally
	notes  []string
}

// note adds lines printed under the phase's row.
func (p *phase) note(lines ...string) {
	p.mu.Lock()
	p.notes = append(p.notes, lines...)
	p.mu.Unlock()
}

// load drives calls at the client and files them by phase.
type load struct {
	add   addsvcv1.AddServiceClient
	c     *cluster
	n     int
	stop  chan struct{}
	once  sync.Once
	gens  sync.WaitGroup
	calls sync.WaitGroup

	mu       sync.Mutex
	cur      *phase
	concatOn bool
}

func newLoad(add addsvcv1.AddServiceClient, c *cluster) *load {
	return &load{add: add, c: c, n: len(c.slots), stop: make(chan struct{})}
}

// begin starts phase name and returns the one it ends (nil at first).
func (l *load) begin(name string) *phase {
	p := &phase{name: name, start: time.Now(), sum: newTally(l.n), concat: newTally(l.n)}
	l.mu.Lock()
	prev := l.cur
	l.cur = p
	l.mu.Unlock()
	if prev != nil {
		prev.end = p.start
	}
	return prev
}

// finish ends the current phase without starting another.
func (l *load) finish() *phase {
	l.mu.Lock()
	p := l.cur
	l.cur = nil
	l.mu.Unlock()
	if p != nil {
		p.end = time.Now()
	}
	return p
}

// setConcat turns the Concat calls on or off.
func (l *load) setConcat(on bool) {
	l.mu.Lock()
	l.concatOn = on
	l.mu.Unlock()
}

// run starts the generators; close stops them and waits for every call.
func (l *load) run() {
	l.gens.Add(2)
	go l.generate(sumRate, false)
	go l.generate(concatRate, true)
}

func (l *load) close() {
	l.once.Do(func() { close(l.stop) })
	l.gens.Wait()
	l.calls.Wait()
}

// generate issues calls at Poisson arrivals of rate per second.
func (l *load) generate(rate float64, concat bool) {
	defer l.gens.Done()
	next := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := int64(0); ; i++ {
		next = next.Add(time.Duration(rand.ExpFloat64() / rate * float64(time.Second)))
		t.Reset(time.Until(next))
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		p := l.cur
		on := p != nil && (!concat || l.concatOn)
		if on {
			p.wg.Add(1)
			l.calls.Add(1)
		}
		l.mu.Unlock()
		if on {
			go l.call(p, next, concat, i)
		}
	}
}

func (l *load) call(p *phase, due time.Time, concat bool, i int64) {
	defer l.calls.Done()
	defer p.wg.Done()
	var pr peer.Peer
	var err error
	ctx := context.Background()
	if concat {
		_, err = l.add.Concat(ctx, &addsvcv1.ConcatRequest{A: "grpc", B: "kit"}, grpc.Peer(&pr))
	} else {
		_, err = l.add.Sum(ctx, &addsvcv1.SumRequest{A: i, B: 2 * i}, grpc.Peer(&pr))
	}
	lat := time.Since(due)
	slot := -1
	if pr.Addr != nil {
		slot = l.c.slotOf(pr.Addr.String())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &p.sum
	if concat {
		t = &p.concat
	}
	t.add(status.Code(err), errors.Is(err, breaker.ErrRejected), lat, slot)
}

// header and row print the table.
func header(w io.Writer, slots []*slot) {
	fmt.Fprintf(w, "%-16s %6s  %-28s %8s %8s ", "phase", "calls", "codes", "p50", "p99")
	for _, s := range slots {
		fmt.Fprintf(w, " %4s", s.name)
	}
	fmt.Fprintln(w)
}

func row(w io.Writer, p *phase) {
	t := &p.sum
	fmt.Fprintf(w, "%-16s %6d  %-28s %8s %8s ", p.name, t.calls, t.codeList(), ms(t.quantile(0.5)), ms(t.quantile(0.99)))
	for _, n := range t.share {
		pct := 0
		if t.ok > 0 {
			pct = (100*n + t.ok/2) / t.ok
		}
		fmt.Fprintf(w, " %3d%%", pct)
	}
	fmt.Fprintln(w)
}

// ms formats a latency compactly: 2.1ms, 23ms.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f < 10 {
		return fmt.Sprintf("%.1fms", f)
	}
	return fmt.Sprintf("%.0fms", f)
}

// sortedKeys is for printing maps in a stable order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
