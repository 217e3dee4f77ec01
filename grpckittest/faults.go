package grpckittest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Fault is what a call made to fail suffers, in this order: it waits
// (Hang, or Delay), then panics (Panic) or fails (Code). The zero Fault
// does nothing.
type Fault struct {
	// Delay makes the call wait this long before it goes on; if the call's
	// context ends first, the call fails with its status (Canceled or
	// DeadlineExceeded).
	Delay time.Duration
	// Hang makes the call wait until its context ends (the client gives
	// up, or the server stops), then fail with its status.
	Hang bool
	// Panic makes the call panic with "grpckittest: injected panic", as a
	// buggy handler would: the server's recovery turns it into
	// codes.Internal.
	Panic bool
	// Code makes the call fail with this code (and the message
	// "grpckittest: injected fault") instead of reaching the handler;
	// codes.OK does not fail it.
	Code codes.Code
}

const (
	injectedMessage = "grpckittest: injected fault"
	injectedPanic   = "grpckittest: injected panic"
)

// do makes the call suffer f.
func (f Fault) do(ctx context.Context) error {
	if f.Hang {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if f.Panic {
		panic(injectedPanic)
	}
	if f.Code != codes.OK {
		return status.Error(f.Code, injectedMessage)
	}
	return nil
}

// Faults decides, call by call, which [Fault] a call suffers, and counts
// the calls. Program it with [Faults.Next], [Faults.Always] and
// [Faults.Sometimes]: a call takes the first fault queued by Next if there
// is one, else the fault of Always or Sometimes. Put it in front of a
// service with its interceptors, or use [Backend], which has one built in.
// The zero value injects nothing and is ready to use; it is safe for
// concurrent use and must not be copied after first use.
type Faults struct {
	calls atomic.Int64
	armed atomic.Bool // something is programmed: take must look

	mu    sync.Mutex
	next  []queued
	fault Fault   // for calls Next does not cover
	share float64 // of them, the share that suffers fault
}

type queued struct {
	n     int
	fault Fault
}

// Next makes the next n calls suffer ft, after the calls already queued by
// earlier Next calls. n ≤ 0 queues nothing.
func (f *Faults) Next(n int, ft Fault) {
	if n <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next = append(f.next, queued{n: n, fault: ft})
	f.armed.Store(true)
}

// Always makes every call that Next does not cover suffer ft, replacing
// what Always or Sometimes set before; Always(Fault{}) stops it.
func (f *Faults) Always(ft Fault) { f.Sometimes(1, ft) }

// Sometimes makes a share p (0 to 1) of the calls that Next does not
// cover, chosen at random, suffer ft, replacing what Always or Sometimes
// set before; p = 0 stops it. It panics if p is not between 0 and 1.
func (f *Faults) Sometimes(p float64, ft Fault) {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("grpckittest: Faults.Sometimes: share %v is not between 0 and 1", p))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault, f.share = ft, p
	f.armed.Store(len(f.next) > 0 || (p > 0 && ft != Fault{}))
}

// Reset removes every fault: those queued by Next and the one set by
// Always or Sometimes. It does not reset the call count.
func (f *Faults) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next, f.fault, f.share = nil, Fault{}, 0
	f.armed.Store(false)
}

// Calls returns how many calls have reached f, whatever they suffered.
// A call counts as soon as it arrives, before its fault: a test can wait
// for a call that hangs to have arrived.
func (f *Faults) Calls() int64 { return f.calls.Load() }

// take counts a call and returns the fault it suffers.
func (f *Faults) take() Fault {
	f.calls.Add(1)
	if !f.armed.Load() {
		return Fault{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.next) > 0 {
		q := &f.next[0]
		ft := q.fault
		if q.n--; q.n == 0 {
			f.next = f.next[1:]
			f.armed.Store(len(f.next) > 0 || (f.share > 0 && f.fault != Fault{}))
		}
		return ft
	}
	if f.share >= 1 || f.share > 0 && rand.Float64() < f.share {
		return f.fault
	}
	return Fault{}
}

// inject counts a call and makes it suffer its fault; a non-nil error
// fails the call.
func (f *Faults) inject(ctx context.Context) error { return f.take().do(ctx) }

// UnaryServerInterceptor returns an interceptor that counts every unary
// call and makes it suffer its fault before the handler runs: a call its
// fault fails never reaches the handler.
func (f *Faults) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := f.inject(ctx); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamServerInterceptor returns an interceptor that counts every stream
// and makes it suffer its fault when it starts, before the handler runs: a
// stream its fault fails never reaches the handler.
func (f *Faults) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := f.inject(ss.Context()); err != nil {
			return err
		}
		return h(srv, ss)
	}
}
