package lb

import (
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type testClock struct{ ns int64 }

func (c *testClock) now() int64              { return c.ns }
func (c *testClock) advance(d time.Duration) { c.ns += int64(d) }

func newTestGroup(members int64, mod func(*Config)) (*Group, *testClock) {
	clock := &testClock{ns: int64(time.Hour)}
	cfg := DefaultConfig()
	if mod != nil {
		mod(cfg)
	}
	g := NewGroup(cfg, clock.now)
	g.members.Store(members)
	return g, clock
}

var (
	errUnavailable = status.Error(codes.Unavailable, "down")
	errNotFound    = status.Error(codes.NotFound, "no such thing")
)

// do runs one call on e that takes d and ends with err.
func do(e *Endpoint, clock *testClock, d time.Duration, err error) {
	start := clock.now()
	e.Begin(start)
	clock.advance(d)
	e.End(start, err)
}

func TestConsecutiveFailuresEjectWithGrowingCappedInterval(t *testing.T) {
	g, clock := newTestGroup(4, func(c *Config) {
		c.Ejection.ConsecutiveFailures = 3
		c.Ejection.BaseEjectionTime = 10 * time.Second
		c.Ejection.MaxEjectionTime = 25 * time.Second
		c.Ejection.MaxEjectionPercent = 50
	})
	e := NewEndpoint(g, "a", 1)
	do(e, clock, time.Millisecond, errUnavailable)
	do(e, clock, time.Millisecond, errNotFound) // an application error is a success for the endpoint
	do(e, clock, time.Millisecond, errUnavailable)
	do(e, clock, time.Millisecond, errUnavailable)
	if e.IsEjected() {
		t.Fatalf("after 2 consecutive failures: got ejected, want admitted")
	}
	do(e, clock, time.Millisecond, errUnavailable)
	if !e.IsEjected() || g.Ejected() != 1 {
		t.Fatalf("after 3 consecutive failures: got ejected=%v group=%d, want true, 1", e.IsEjected(), g.Ejected())
	}
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second} {
		clock.advance(want - time.Millisecond)
		if e.Usable(clock.now()) {
			t.Fatalf("ejection %d: usable %v before its end, want %v of ejection", i+1, want-time.Millisecond, want)
		}
		clock.advance(time.Millisecond)
		if !e.Usable(clock.now()) || e.IsEjected() || g.Ejected() != 0 {
			t.Fatalf("ejection %d: after %v: got usable=%v ejected=%v group=%d, want readmitted", i+1, want, e.Usable(clock.now()), e.IsEjected(), g.Ejected())
		}
		do(e, clock, time.Millisecond, errUnavailable) // on probation: one failure ejects again
		if !e.IsEjected() {
			t.Fatalf("ejection %d: failure on probation: got admitted, want ejected", i+1)
		}
	}
	if got := e.Ejections(); got != 5 {
		t.Errorf("ejections: got %d, want 5", got)
	}
}

func TestProbationEndsWithSuccess(t *testing.T) {
	g, clock := newTestGroup(4, func(c *Config) { c.Ejection.ConsecutiveFailures = 2; c.Ejection.MaxEjectionPercent = 50 })
	e := NewEndpoint(g, "a", 1)
	do(e, clock, time.Millisecond, errUnavailable)
	do(e, clock, time.Millisecond, errUnavailable)
	clock.advance(DefaultBaseEjectionTime)
	e.Usable(clock.now())
	do(e, clock, time.Millisecond, nil)
	do(e, clock, time.Millisecond, errUnavailable)
	if e.IsEjected() {
		t.Errorf("one failure after a success on probation: got ejected, want admitted")
	}
}

func TestFailureRateEjects(t *testing.T) {
	g, clock := newTestGroup(4, func(c *Config) {
		c.Ejection.ConsecutiveFailures = 0
		c.Ejection.FailureRate = 0.5
		c.Ejection.MinRequests = 20
		c.Ejection.Interval = time.Second
		c.Ejection.MaxEjectionPercent = 50
	})
	e := NewEndpoint(g, "a", 1)
	for i := range 30 {
		err := error(nil)
		if i%2 == 0 {
			err = errUnavailable
		}
		do(e, clock, 10*time.Millisecond, err) // 300ms: within the interval
	}
	if e.IsEjected() {
		t.Fatalf("before the interval ends: got ejected, want admitted")
	}
	clock.advance(time.Second)
	do(e, clock, time.Millisecond, errUnavailable)
	if !e.IsEjected() {
		t.Errorf("16 of 31 failed in the interval, rate 0.5: got admitted, want ejected")
	}

	// Below the rate, or too few calls: not ejected.
	e2 := NewEndpoint(g, "b", 1)
	for i := range 30 {
		err := error(nil)
		if i%3 == 0 {
			err = errUnavailable
		}
		do(e2, clock, 50*time.Millisecond, err)
	}
	if e2.IsEjected() {
		t.Errorf("a third failed: got ejected, want admitted")
	}
}

func TestMaxEjectionPercentBoundsTheGroup(t *testing.T) {
	for _, tc := range []struct {
		members, percent, want int64
	}{
		{10, 20, 2}, {10, 10, 1}, {4, 10, 1}, {4, 0, 0}, {4, 100, 4}, {3, 50, 2},
	} {
		g, clock := newTestGroup(tc.members, func(c *Config) {
			c.Ejection.ConsecutiveFailures = 1
			c.Ejection.MaxEjectionPercent = tc.percent
		})
		for i := range tc.members {
			do(NewEndpoint(g, string(rune('a'+i)), 1), clock, time.Millisecond, errUnavailable)
		}
		if got := g.Ejected(); got != tc.want {
			t.Errorf("%d endpoints failing, max %d%%: got %d ejected, want %d", tc.members, tc.percent, got, tc.want)
		}
	}
}

func TestCallerContextDoesNotCountAgainstEndpoint(t *testing.T) {
	g, clock := newTestGroup(1, func(c *Config) { c.Ejection.ConsecutiveFailures = 1; c.Ejection.MaxEjectionPercent = 100 })
	e := NewEndpoint(g, "a", 1)
	start := clock.now()
	e.Begin(start)
	clock.advance(time.Second)
	e.End(start, status.Error(codes.Canceled, "context canceled"))
	if calls, _ := e.Calls(); calls != 0 || e.Latency() != 0 || e.InFlight() != 0 {
		t.Errorf("canceled call: got calls=%d latency=%v inflight=%d, want 0, 0, 0", calls, e.Latency(), e.InFlight())
	}

	start = clock.now()
	e.Begin(start)
	clock.advance(time.Second)
	e.End(start, status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	if _, failures := e.Calls(); failures != 0 || e.IsEjected() || e.SuccessRate() != 1 {
		t.Errorf("caller's deadline: got failures=%d ejected=%v success=%v, want 0, false, 1", failures, e.IsEjected(), e.SuccessRate())
	}
	if got := time.Duration(e.Latency()); got != time.Second {
		t.Errorf("caller's deadline: got latency %v, want 1s (counted as slow)", got)
	}
}

func TestPeakEWMA(t *testing.T) {
	g, clock := newTestGroup(1, func(c *Config) { c.Decay = time.Second })
	e := NewEndpoint(g, "a", 1)
	do(e, clock, time.Millisecond, nil)
	if got := time.Duration(e.Latency()); got != time.Millisecond {
		t.Fatalf("first observation: got %v, want 1ms", got)
	}
	for i, want := range []time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 10 * time.Millisecond} {
		do(e, clock, 10*time.Millisecond, nil)
		if got := time.Duration(e.Latency()); got != want {
			t.Fatalf("slow call %d: got %v, want %v (doubling up to the peak)", i+1, got, want)
		}
	}
	do(e, clock, time.Millisecond, nil) // 1ms after the last: one minimal step
	if got, want := time.Duration(e.Latency()), 10*time.Millisecond-(9*time.Millisecond)/32; got != want {
		t.Errorf("decay after 1ms: got %v, want %v", got, want)
	}
	clock.advance(5 * time.Second)
	do(e, clock, time.Millisecond, nil) // 5 time constants later: mostly decayed
	if got := time.Duration(e.Latency()); got > 1100*time.Microsecond {
		t.Errorf("decay after 5s: got %v, want < 1.1ms", got)
	}
	do(e, clock, time.Millisecond, errUnavailable) // fast failures do not lower the latency
	if sr := e.SuccessRate(); sr >= 1 {
		t.Errorf("success rate after a failure: got %v, want < 1", sr)
	}
}

func TestScoreOrdersEndpoints(t *testing.T) {
	g, clock := newTestGroup(3, nil)
	fast, slow, heavy := NewEndpoint(g, "fast", 1), NewEndpoint(g, "slow", 1), NewEndpoint(g, "heavy", 3)
	do(fast, clock, time.Millisecond, nil)
	do(slow, clock, 10*time.Millisecond, nil)
	do(heavy, clock, time.Millisecond, nil)
	if !(fast.Score() < slow.Score()) {
		t.Errorf("got fast %v >= slow %v, want fast lower", fast.Score(), slow.Score())
	}
	fast.Begin(clock.now())
	heavy.Begin(clock.now())
	if !(heavy.Score() < fast.Score()) {
		t.Errorf("one call in flight each: got heavy (weight 3) %v >= fast %v, want heavy lower", heavy.Score(), fast.Score())
	}
}

func TestPickRecordsOverlappingCalls(t *testing.T) {
	g, clock := newTestGroup(1, nil)
	e := NewEndpoint(g, "a", 1)
	const n = 3*ringSize + 5 // more than the ring holds: some calls fall back
	dones := make([]func(balancer.DoneInfo), n)
	for i := range dones {
		dones[i] = e.Pick(clock.now(), nil)
		clock.advance(time.Millisecond)
	}
	if got := e.InFlight(); got != n {
		t.Fatalf("in flight: got %d, want %d", got, n)
	}
	for _, done := range dones {
		done(balancer.DoneInfo{})
	}
	if got := e.InFlight(); got != 0 {
		t.Errorf("in flight after all done: got %d, want 0", got)
	}
	if calls, _ := e.Calls(); calls != n {
		t.Errorf("calls: got %d, want %d", calls, n)
	}
	// Each call's latency came from its own pick time: the first took the
	// longest, n ms.
	if got, max := time.Duration(e.Latency()), time.Duration(n)*time.Millisecond; got <= 0 || got > max {
		t.Errorf("latency: got %v, want within (0, %v]", got, max)
	}
	// Slots are free again: a new pick gets one.
	done := e.Pick(clock.now(), nil)
	clock.advance(2 * time.Millisecond)
	done(balancer.DoneInfo{Err: errUnavailable})
	if _, failures := e.Calls(); failures != 1 {
		t.Errorf("failures: got %d, want 1", failures)
	}
}
