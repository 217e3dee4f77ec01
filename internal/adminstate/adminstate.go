// Package adminstate holds what the admin handler (package admin) shows: the
// live grpckit servers and clients of the process, which add themselves
// when built and leave when closed, and the state each reports. The types
// are the JSON the admin handler serves; package admin documents them.
package adminstate

import (
	"sync"

	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/hedge"
	"github.com/grpckit/grpckit/interceptors/retry"
	"github.com/grpckit/grpckit/internal/live"
	"github.com/grpckit/grpckit/resolver"
)

// State is the whole admin state of a process.
type State struct {
	Time      time.Time        `json:"time"`
	Process   Process          `json:"process"`
	Servers   []Server         `json:"servers"`
	Clients   []Client         `json:"clients"`
	Resolvers []resolver.State `json:"resolvers"`
	Balancers []balancer.State `json:"balancers"`
}

// Process describes the process.
type Process struct {
	PID        int           `json:"pid"`
	Command    string        `json:"command"`
	GoVersion  string        `json:"goVersion"`
	Started    time.Time     `json:"started"`
	Uptime     time.Duration `json:"uptimeNs"`
	Goroutines int           `json:"goroutines"`
	HeapBytes  uint64        `json:"heapBytes"`
	GCCycles   uint32        `json:"gcCycles"`
}

// Server is one grpckit server.
type Server struct {
	ID            int64                   `json:"id"`
	Addresses     []string                `json:"addresses"`
	Admin         string                  `json:"admin,omitempty"`
	Status        string                  `json:"status"`
	Services      []Service               `json:"services"`
	Registrations []resolver.Registration `json:"registrations"`
	Calls         Calls                   `json:"calls"`
	Limiters      []Limiter               `json:"limiters"`
}

// Service is a registered service and its health status.
type Service struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Client is one grpckit client connection.
type Client struct {
	ID        int64                    `json:"id"`
	Target    string                   `json:"target"`
	State     string                   `json:"state"`
	Balancer  string                   `json:"balancer"`
	Calls     Calls                    `json:"calls"`
	Breakers  []breaker.Status         `json:"breakers"`
	Retry     *retry.Budget            `json:"retry,omitempty"`
	Hedging   *hedge.State             `json:"hedging,omitempty"`
	Limiters  []Limiter                `json:"limiters"`
	Resolver  *resolver.State          `json:"resolver,omitempty"`
	Endpoints []balancer.EndpointState `json:"endpoints"`
	Ejected   int64                    `json:"ejected"`
}

// Limiter is a rate or concurrency limiter's counts.
type Limiter struct {
	Name                string `json:"name"`
	RejectedRate        int64  `json:"rejectedRate"`
	RejectedConcurrency int64  `json:"rejectedConcurrency"`
	InFlight            int    `json:"inFlight"`
	Keys                int    `json:"keys"`
}

// Calls counts the calls (unary calls and streams) of a server or client.
type Calls struct {
	InFlight int64       `json:"inFlight"`
	Done     int64       `json:"done"`
	Failed   int64       `json:"failed"`
	Recent   []CallError `json:"recentErrors"`
}

// CallError is a call that ended with a status other than OK.
type CallError struct {
	Time    time.Time `json:"time"`
	Method  string    `json:"method"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Peer    string    `json:"peer,omitempty"`
}

// ServerSource is a live server.
type ServerSource struct {
	State    func() Server
	Registry prometheus.Gatherer // nil when its metrics are off
}

// ClientSource is a live client.
type ClientSource struct {
	State    func() Client
	Registry prometheus.Gatherer // nil when its metrics are off
}

// Servers and Clients are the live servers and clients of the process.
var (
	Servers live.Set[*ServerSource]
	Clients live.Set[*ClientSource]
)

// ids numbers servers and clients.
var ids atomic.Int64

// NextID returns a process-unique ID for a server or client.
func NextID() int64 { return ids.Add(1) }

// recentErrors is how many failed calls an Activity keeps.
const recentErrors = 20

// maxMessage bounds the length of a kept error message.
const maxMessage = 256

// Activity counts the calls of one server or client and keeps its most
// recent failures. Begin and End cost an atomic add each; a failure also
// takes a lock.
type Activity struct {
	begun atomic.Int64
	_     [56]byte // begun and ended on their own cache lines
	ended atomic.Int64
	_     [56]byte

	mu     sync.Mutex
	failed int64
	ring   [recentErrors]CallError
	next   int
}

// Begin records a call's start.
func (a *Activity) Begin() { a.begun.Add(1) }

// End records a call's end; a failure (any status but OK) is kept with its
// method, code, message and, when peer is not nil, the peer it names.
func (a *Activity) End(method string, err error, peer func() string) {
	a.ended.Add(1)
	if err == nil {
		return
	}
	st := status.Convert(err)
	if st.Code() == codes.OK {
		return
	}
	msg := st.Message()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	e := CallError{Time: time.Now(), Method: method, Code: st.Code().String(), Message: msg}
	if peer != nil {
		e.Peer = peer()
	}
	a.mu.Lock()
	a.failed++
	a.ring[a.next] = e
	a.next = (a.next + 1) % recentErrors
	a.mu.Unlock()
}

// Calls returns the counts and the recent failures, newest first.
func (a *Activity) Calls() Calls {
	ended := a.ended.Load()
	begun := a.begun.Load()
	c := Calls{InFlight: max(0, begun-ended), Done: ended, Recent: []CallError{}}
	a.mu.Lock()
	defer a.mu.Unlock()
	c.Failed = a.failed
	for i := 1; i <= recentErrors; i++ {
		e := a.ring[(a.next-i+recentErrors)%recentErrors]
		if e.Time.IsZero() {
			break
		}
		c.Recent = append(c.Recent, e)
	}
	return c
}
