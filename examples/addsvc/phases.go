package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/examples/internal/embedetcd"
	"github.com/grpckit/grpckit/interceptors/breaker"
)

// Demo timings.
const (
	steadyFor      = 3 * time.Second
	slowFor        = 3 * time.Second
	failFor        = 2500 * time.Millisecond
	healFor        = 3 * time.Second // > the longest ejection (2 s)
	concatFailFor  = 1500 * time.Millisecond
	concatHealFor  = 2 * time.Second // at least; until the breaker closes
	settleFor      = 500 * time.Millisecond
	etcdDownFor    = 2 * time.Second
	drainDelay     = 300 * time.Millisecond
	breakerTimeout = time.Second // breaker's default: 10 s
)

// demo runs the phases and prints a table row (and notes) after each.
type demo struct {
	w      io.Writer
	c      *cluster
	l      *load
	etcd   *embedetcd.Etcd
	target string
	bl     *breakerLog
}

// phases runs the demo's phases under load; short runs only the first.
func (d *demo) phases(ctx context.Context, short bool) error {
	fmt.Fprintf(d.w, "\nload: %.0f Sum calls/s (open loop, Poisson arrivals); each server takes %v a call (%v when slowed)\n"+
		"table: Sum calls per phase, their status codes, latency from when each was due, each server's share of the successes\n\n",
		sumRate, baseLatency, slowLatency)
	header(d.w, d.c.slots)
	defer func() { d.report(d.l.finish()) }()

	d.l.begin("steady")
	p := d.l.cur
	d.sleepUntil(p, steadyFor)
	if short {
		return nil
	}

	s2, s3 := d.c.slots[1], d.c.slots[2]
	s2.mode.Store(slow)
	p = d.begin("s2-slow")
	d.sleepUntil(p, slowFor)
	s2.mode.Store(normal)

	ej0 := d.endpoint(2).Ejections
	f0 := s3.failed.Load()
	s3.mode.Store(failing)
	p = d.begin("s3-failing")
	d.sleepUntil(p, failFor)
	s3.mode.Store(normal)
	p = d.begin("s3-healed", func(*phase) []string {
		return []string{
			fmt.Sprintf("%s failed %d calls on purpose (Unavailable); the client retried them (Sum is idempotent)", s3.name, s3.failed.Load()-f0),
			fmt.Sprintf("balancer: %s ejected %d× during the phase", s3.name, d.endpoint(2).Ejections-ej0),
		}
	})
	d.sleepUntil(p, healFor)

	d.c.concatFail.Store(true)
	d.l.setConcat(true)
	p = d.begin("concat-failing", func(prev *phase) []string {
		e := d.endpoint(2)
		if e.Ejected {
			return []string{fmt.Sprintf("balancer: %s still ejected", s3.name)}
		}
		return []string{fmt.Sprintf("balancer: %s readmitted; it served %d calls since it healed", s3.name, prev.sum.share[2])}
	})
	d.sleepUntil(p, concatFailFor)
	d.c.concatFail.Store(false)
	p = d.begin("concat-healed")
	d.sleepUntil(p, concatHealFor)
	for end := time.Now().Add(3 * breakerTimeout); d.bl.open() && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	d.l.setConcat(false)
	p = d.begin("rolling-restart")
	for i, s := range d.c.slots {
		old := s.addr
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := d.c.stop(sctx, i)
		cancel()
		if err != nil {
			return err
		}
		stopped := time.Since(start)
		if err := d.c.start(i); err != nil {
			return err
		}
		if err := d.c.waitRegistered(ctx, len(d.c.slots), 10*time.Second); err != nil {
			return err
		}
		p.note(fmt.Sprintf("%s: %s → %s (deregistered, drained %v, stopped in %v; replacement registered)",
			s.name, old, s.addr, drainDelay, stopped.Round(time.Millisecond)))
	}
	time.Sleep(settleFor)

	p = d.begin("etcd-down")
	time.Sleep(settleFor)
	start := time.Now()
	d.etcd.Stop()
	stopped := time.Now()
	time.Sleep(etcdDownFor)
	if err := d.etcd.Resume(); err != nil {
		return err
	}
	resumed := time.Now()
	if err := d.c.waitRegistered(ctx, len(d.c.slots), 15*time.Second); err != nil {
		return err
	}
	p.note(fmt.Sprintf("etcd stopping: new connections refused at once, open streams cut after %v; down %v, restarted; all %d registrations there %v later",
		stopped.Sub(start).Round(100*time.Millisecond), resumed.Sub(stopped).Round(100*time.Millisecond),
		len(d.c.slots), time.Since(resumed).Round(100*time.Millisecond)))
	time.Sleep(settleFor)
	return nil
}

// begin starts the next phase, and prints the one that ended with the notes
// that notes (if any) returns once its calls are done.
func (d *demo) begin(name string, notes ...func(prev *phase) []string) *phase {
	prev := d.l.begin(name)
	prev.wg.Wait()
	for _, f := range notes {
		prev.note(f(prev)...)
	}
	d.report(prev)
	return d.l.cur
}

// report waits for the phase's calls and prints its row and notes.
func (d *demo) report(p *phase) {
	if p == nil {
		return
	}
	p.wg.Wait()
	row(d.w, p)
	if t := &p.concat; t.calls > 0 {
		p.note(fmt.Sprintf("Concat: %d calls, %s; %d of them rejected by the open breaker without being sent",
			t.calls, t.codeList(), t.rejected))
	}
	p.note(d.bl.between(p.start, p.end)...)
	for _, n := range p.notes {
		fmt.Fprintf(d.w, "    %s\n", n)
	}
}

func (d *demo) sleepUntil(p *phase, dur time.Duration) {
	time.Sleep(time.Until(p.start.Add(dur)))
}

// endpoint returns the balancer's state of slot i's current address.
func (d *demo) endpoint(i int) balancer.EndpointState {
	addr := d.c.slots[i].addr
	for _, b := range balancer.Snapshot() {
		if b.Target != d.target {
			continue
		}
		for _, e := range b.Endpoints {
			if e.Addr == addr {
				return e
			}
		}
	}
	return balancer.EndpointState{Addr: addr}
}

// onStateChange is breaker.WithOnStateChange(f) with the states spelled
// ("closed", "open", "half-open"): the state type, gobreaker.State, is
// inferred from opt, so that this module need not require gobreaker.
func onStateChange[S fmt.Stringer](opt func(func(key string, from, to S)) breaker.Option, f func(key, from, to string)) breaker.Option {
	return opt(func(key string, from, to S) { f(key, from.String(), to.String()) })
}

// breakerLog records the client's breaker transitions.
type breakerLog struct {
	mu     sync.Mutex
	events []breakerEvent
	state  map[string]string
}

type breakerEvent struct {
	at            time.Time
	key, from, to string
}

func (b *breakerLog) record(key, from, to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, breakerEvent{time.Now(), key, from, to})
	if b.state == nil {
		b.state = make(map[string]string)
	}
	b.state[key] = to
}

// open reports whether some breaker is not closed.
func (b *breakerLog) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.state {
		if s != "closed" {
			return true
		}
	}
	return false
}

// between returns the transitions in [from, to), spelled per method.
func (b *breakerLog) between(from, to time.Time) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	by := map[string][]string{}
	for _, e := range b.events {
		if e.at.Before(from) || !e.at.Before(to) {
			continue
		}
		m := e.key[strings.LastIndex(e.key, "/")+1:]
		if len(by[m]) == 0 {
			by[m] = append(by[m], e.from)
		}
		by[m] = append(by[m], e.to)
	}
	var out []string
	for _, m := range sortedKeys(by) {
		out = append(out, fmt.Sprintf("%s breaker: %s", m, strings.Join(by[m], " → ")))
	}
	return out
}
