package consultest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/wait"
)

// Node, datacenter and node address the fake agent reports.
const (
	NodeName    = "consultest"
	Datacenter  = "dc1"
	NodeAddress = "127.0.0.1"
)

// Blocking query limits, as Consul documents them.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

// serfCheckID is the node-level check every Consul node carries.
const serfCheckID = "serfHealth"

type check struct {
	hc       api.HealthCheck
	ttl      time.Duration
	deadline time.Time // TTL expiry
	dcsa     time.Duration
	critical time.Time // since when critical; zero when not
}

type service struct {
	svc    api.AgentService
	checks []string // check IDs, in registration order
}

// Server is a fake Consul agent (and its one-node cluster) on a loopback
// listener. Create it with [Start]; the test's cleanup closes it.
type Server struct {
	addr string
	tick time.Duration
	// connWait bounds how long the test's cleanup waits for the clients
	// to close their connections (see [Start]).
	connWait time.Duration
	conns    atomic.Int64 // open client connections

	mu        sync.Mutex
	lis       net.Listener
	http      *http.Server
	served    chan struct{}
	index     uint64            // the cluster's raft index
	nameIndex map[string]uint64 // last index that touched a service name
	services  map[string]*service
	checks    map[string]*check
	changed   chan struct{} // closed and replaced on every change
	failing   int           // status code to answer with, 0 = normal
	closed    bool

	requests sync.Map // path prefix ("health", "register", ...) -> *atomic.Int64

	stopReaper chan struct{}
	reaperDone chan struct{}
}

// Start runs a fake agent on 127.0.0.1 and closes it when the test ends.
//
// Before closing it, the cleanup checks that the clients closed every
// connection they opened to it, and fails the test otherwise. A real agent
// never closes a client's idle keep-alive connections, so a client that
// leaves them open keeps net/http goroutines running (goleak reports them),
// which closing the fake would otherwise hide. Start the agent before its
// clients, so that their cleanup (see [NewClient]) runs first.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := New("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("consultest: %v", err)
	}
	tb.Cleanup(func() {
		defer s.Close()
		var n int64
		if !wait.Poll(s.connWait, func() bool { n = s.conns.Load(); return n == 0 }) {
			tb.Errorf("consultest: %d client connections to the agent still open after %v at the end of the test; "+
				"a real agent keeps them, and goleak reports their net/http persistConn goroutines: "+
				"close each api.Client's idle connections at cleanup (NewClient does)", n, s.connWait)
		}
	})
	return s
}

// New runs a fake agent listening on addr; Close stops it. Tests use
// [Start]; New serves examples.
func New(addr string) (*Server, error) {
	s := &Server{
		tick:       10 * time.Millisecond,
		connWait:   5 * time.Second,
		index:      1,
		nameIndex:  map[string]uint64{},
		services:   map[string]*service{},
		checks:     map[string]*check{},
		changed:    make(chan struct{}),
		stopReaper: make(chan struct{}),
		reaperDone: make(chan struct{}),
	}
	if err := s.listen(addr); err != nil {
		return nil, err
	}
	s.addr = s.lis.Addr().String()
	go s.reaper()
	return s, nil
}

func (s *Server) listen(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second, ConnState: s.connState}
	served := make(chan struct{})
	s.lis, s.http, s.served = lis, hs, served
	go func() {
		defer close(served)
		_ = hs.Serve(lis)
	}()
	return nil
}

// connState counts the open client connections.
func (s *Server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
	}
}

// Addr returns the agent's host:port.
func (s *Server) Addr() string { return s.addr }

// Client returns a consul/api client for this agent whose idle connections
// are closed when the test ends (see [NewClient]).
func (s *Server) Client(tb testing.TB) *api.Client {
	tb.Helper()
	return NewClient(tb, s.addr)
}

// Stop closes the listener and every open connection, as a crashed agent
// would; registrations are kept (see [Server.Forget] for a restart that
// loses them). Start serves again on the same address.
func (s *Server) Stop() {
	s.mu.Lock()
	hs, served := s.http, s.served
	s.http = nil
	s.mu.Unlock()
	if hs == nil {
		return
	}
	_ = hs.Close()
	<-served
}

// Start serves again on the address of the stopped agent.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil || s.closed {
		return nil
	}
	return s.listen(s.addr)
}

// Close stops the agent and its goroutines. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.Stop()
	close(s.stopReaper)
	<-s.reaperDone
}

// SetFailing makes every endpoint answer with code (500 for an agent that
// lost its servers) until it is called with 0.
func (s *Server) SetFailing(code int) {
	s.mu.Lock()
	s.failing = code
	s.mu.Unlock()
}

// Forget drops every service and check, as an agent restarted without its
// data directory does. Blocking queries wake up.
func (s *Server) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.services {
		s.touchLocked(s.services[id].svc.Service)
	}
	s.services = map[string]*service{}
	s.checks = map[string]*check{}
	s.bumpLocked()
}

// SetIndex sets the cluster's index to v, which may be lower than the
// current one (a snapshot restore or a new cluster), and wakes blocking
// queries. Every service name reports v.
func (s *Server) SetIndex(v uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = v
	for n := range s.nameIndex {
		s.nameIndex[n] = v
	}
	s.wakeLocked()
}

// Index returns the cluster's current index.
func (s *Server) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// SetCheckStatus sets a check's status (api.HealthPassing, HealthWarning,
// HealthCritical) as its own check would. It reports whether the check
// exists. A TTL check keeps the status until its TTL runs out again.
func (s *Server) SetCheckStatus(checkID, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateCheckLocked(checkID, status, "set by test", time.Now())
}

// Services returns the IDs of the registered services, sorted.
func (s *Server) Services() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.services))
	for id := range s.services {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// CheckStatus returns a check's status, or "" when it does not exist.
func (s *Server) CheckStatus(checkID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.checks[checkID]; ok {
		return c.hc.Status
	}
	return ""
}

// Requests returns how many requests an endpoint received: "health",
// "register", "deregister", "check" or "service".
func (s *Server) Requests(endpoint string) int64 {
	if v, ok := s.requests.Load(endpoint); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (s *Server) count(endpoint string) {
	v, _ := s.requests.LoadOrStore(endpoint, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// bumpLocked advances the index and wakes blocking queries.
func (s *Server) bumpLocked() uint64 {
	s.index++
	s.wakeLocked()
	return s.index
}

func (s *Server) wakeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// touchLocked records that the next index touches service name.
func (s *Server) touchLocked(name string) {
	s.nameIndex[name] = s.index + 1
}

func (s *Server) updateCheckLocked(id, status, output string, now time.Time) bool {
	c, ok := s.checks[id]
	if !ok {
		return false
	}
	if c.ttl > 0 {
		c.deadline = now.Add(c.ttl)
	}
	if status == api.HealthCritical {
		if c.critical.IsZero() {
			c.critical = now
		}
	} else {
		c.critical = time.Time{}
	}
	if c.hc.Status == status && c.hc.Output == output {
		return true // Consul does not bump the index for no change
	}
	c.hc.Status, c.hc.Output = status, output
	s.touchLocked(c.hc.ServiceName)
	c.hc.ModifyIndex = s.bumpLocked()
	return true
}

// reaper expires TTL checks and deregisters services critical for longer
// than their DeregisterCriticalServiceAfter.
func (s *Server) reaper() {
	defer close(s.reaperDone)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-s.stopReaper:
			return
		case now := <-t.C:
			s.reap(now)
		}
	}
}

func (s *Server) reap(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.checks {
		if c.ttl > 0 && now.After(c.deadline) && c.hc.Status != api.HealthCritical {
			s.updateCheckLocked(id, api.HealthCritical, "TTL expired", now)
		}
	}
	for _, c := range s.checks {
		if c.dcsa > 0 && !c.critical.IsZero() && now.Sub(c.critical) > c.dcsa {
			s.deregisterLocked(c.hc.ServiceID)
		}
	}
}

func (s *Server) deregisterLocked(id string) bool {
	svc, ok := s.services[id]
	if !ok {
		return false
	}
	for _, cid := range svc.checks {
		delete(s.checks, cid)
	}
	delete(s.services, id)
	s.touchLocked(svc.svc.Service)
	s.bumpLocked()
	return true
}

// serveHTTP routes a request.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	failing := s.failing
	s.mu.Unlock()
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/health/service/"):
		s.count("health")
	case p == "/v1/agent/service/register":
		s.count("register")
	case strings.HasPrefix(p, "/v1/agent/service/deregister/"):
		s.count("deregister")
	case strings.HasPrefix(p, "/v1/agent/check/"):
		s.count("check")
	case strings.HasPrefix(p, "/v1/agent/service/"):
		s.count("service")
	}
	if failing != 0 {
		http.Error(w, "No cluster leader", failing)
		return
	}
	switch {
	case strings.HasPrefix(p, "/v1/health/service/"):
		s.method(w, r, http.MethodGet, s.healthService)
	case p == "/v1/agent/service/register":
		s.method(w, r, http.MethodPut, s.register)
	case strings.HasPrefix(p, "/v1/agent/service/deregister/"):
		s.method(w, r, http.MethodPut, s.deregister)
	case strings.HasPrefix(p, "/v1/agent/check/"):
		s.method(w, r, http.MethodPut, s.checkUpdate)
	case strings.HasPrefix(p, "/v1/agent/service/"):
		s.method(w, r, http.MethodGet, s.agentService)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) method(w http.ResponseWriter, r *http.Request, m string, h http.HandlerFunc) {
	if r.Method != m {
		w.Header().Set("Allow", m)
		http.Error(w, fmt.Sprintf("method %s not allowed", r.Method), http.StatusMethodNotAllowed)
		return
	}
	h(w, r)
}

// entMeta checks the Enterprise-only parameters as Consul CE does: only the
// default namespace and partition exist.
func entMeta(q map[string][]string) error {
	for _, k := range []string{"ns", "partition"} {
		if v := first(q, k); v != "" && v != "default" {
			return fmt.Errorf("invalid query parameter: %q - %s are a Consul Enterprise feature", k, map[string]string{"ns": "Namespaces", "partition": "Partitions"}[k])
		}
	}
	return nil
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return defaultWait, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		// Consul also accepts a bare number of seconds.
		n, nerr := strconv.ParseUint(v, 10, 32)
		if nerr != nil {
			return 0, fmt.Errorf("invalid wait time: %q", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d > maxWait {
		d = maxWait
	}
	return d, nil
}

func (s *Server) healthService(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/v1/health/service/")
	q := r.URL.Query()
	if name == "" {
		http.Error(w, "Missing service name", http.StatusBadRequest)
		return
	}
	if dc := first(q, "dc"); dc != "" && dc != Datacenter {
		http.Error(w, "No path to datacenter", http.StatusInternalServerError)
		return
	}
	if err := entMeta(q); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var minIndex uint64
	if v := first(q, "index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "Invalid index", http.StatusBadRequest)
			return
		}
		minIndex = n
	}
	wait, err := parseWait(first(q, "wait"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, passing := q["passing"]
	if v := first(q, "passing"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			http.Error(w, "Invalid value for ?passing", http.StatusBadRequest)
			return
		}
		passing = b
	}
	tags := q["tag"]

	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		idx := s.index
		if n, ok := s.nameIndex[name]; ok {
			idx = n
		}
		// Like Consul, block while the index is not past the one asked
		// for, even when it went backwards: the client must notice that
		// and start over from 0.
		if minIndex == 0 || idx > minIndex {
			out := s.entriesLocked(name, tags, passing)
			s.mu.Unlock()
			writeJSON(w, idx, out)
			return
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			s.mu.Lock()
			idx = s.index
			if n, ok := s.nameIndex[name]; ok {
				idx = n
			}
			out := s.entriesLocked(name, tags, passing)
			s.mu.Unlock()
			writeJSON(w, idx, out)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) entriesLocked(name string, tags []string, passingOnly bool) []*api.ServiceEntry {
	ids := make([]string, 0)
	for id, svc := range s.services {
		if svc.svc.Service == name {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := make([]*api.ServiceEntry, 0, len(ids))
	serf := api.HealthCheck{
		Node: NodeName, CheckID: serfCheckID, Name: "Serf Health Status", Status: api.HealthPassing,
		Output: "Agent alive and reachable", Type: "", CreateIndex: 1, ModifyIndex: 1,
	}
next:
	for _, id := range ids {
		svc := s.services[id]
		for _, t := range tags {
			if !slices.Contains(svc.svc.Tags, t) {
				continue next
			}
		}
		sc := serf
		checks := api.HealthChecks{&sc}
		for _, cid := range svc.checks {
			hc := s.checks[cid].hc
			hc.ServiceTags = slices.Clone(svc.svc.Tags)
			checks = append(checks, &hc)
		}
		if passingOnly && checks.AggregatedStatus() != api.HealthPassing {
			continue
		}
		as := svc.svc
		as.Tags = slices.Clone(as.Tags)
		out = append(out, &api.ServiceEntry{
			Node: &api.Node{
				ID: "8b4ba0d4-0a50-4d2a-9f0c-000000000001", Node: NodeName, Address: NodeAddress,
				Datacenter:      Datacenter,
				TaggedAddresses: map[string]string{"lan": NodeAddress, "wan": NodeAddress},
				Meta:            map[string]string{"consul-network-segment": ""},
				CreateIndex:     1, ModifyIndex: 1,
			},
			Service: &as,
			Checks:  checks,
		})
	}
	return out
}

func writeJSON(w http.ResponseWriter, index uint64, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if index > 0 {
		h.Set("X-Consul-Index", strconv.FormatUint(index, 10))
		h.Set("X-Consul-KnownLeader", "true")
		h.Set("X-Consul-LastContact", "0")
	}
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var reg api.AgentServiceRegistration
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&reg); err != nil {
		http.Error(w, fmt.Sprintf("Request decode failed: %v", err), http.StatusBadRequest)
		return
	}
	if reg.Name == "" {
		http.Error(w, "Missing service name", http.StatusBadRequest)
		return
	}
	if reg.Namespace != "" && reg.Namespace != "default" || reg.Partition != "" && reg.Partition != "default" {
		http.Error(w, "Namespaces and partitions are a Consul Enterprise feature", http.StatusBadRequest)
		return
	}
	if reg.ID == "" {
		reg.ID = reg.Name
	}
	weights := api.AgentWeights{Passing: 1, Warning: 1}
	if reg.Weights != nil {
		if reg.Weights.Passing < 1 {
			http.Error(w, "Passing must be greater than 0", http.StatusBadRequest)
			return
		}
		weights = *reg.Weights
	}
	defs := append(api.AgentServiceChecks(nil), reg.Checks...)
	if reg.Check != nil {
		defs = append(api.AgentServiceChecks{reg.Check}, defs...)
	}
	now := time.Now()
	var checks []*check
	for i, d := range defs {
		if d.TTL == "" {
			http.Error(w, "consultest supports TTL checks only", http.StatusBadRequest)
			return
		}
		ttl, err := time.ParseDuration(d.TTL)
		if err != nil || ttl <= 0 {
			http.Error(w, fmt.Sprintf("Invalid check: TTL %q", d.TTL), http.StatusBadRequest)
			return
		}
		var dcsa time.Duration
		if d.DeregisterCriticalServiceAfter != "" {
			if dcsa, err = time.ParseDuration(d.DeregisterCriticalServiceAfter); err != nil {
				http.Error(w, fmt.Sprintf("Invalid check: DeregisterCriticalServiceAfter %q", d.DeregisterCriticalServiceAfter), http.StatusBadRequest)
				return
			}
		}
		id := d.CheckID
		if id == "" {
			id = "service:" + reg.ID
			if len(defs) > 1 {
				id = fmt.Sprintf("service:%s:%d", reg.ID, i+1)
			}
		}
		name := d.Name
		if name == "" {
			name = "Service '" + reg.Name + "' check"
		}
		status := d.Status
		switch status {
		case "":
			status = api.HealthCritical
		case api.HealthPassing, api.HealthWarning, api.HealthCritical:
		default:
			http.Error(w, fmt.Sprintf("Invalid check: status %q", status), http.StatusBadRequest)
			return
		}
		c := &check{
			hc: api.HealthCheck{
				Node: NodeName, CheckID: id, Name: name, Status: status, Notes: d.Notes,
				ServiceID: reg.ID, ServiceName: reg.Name, Type: "ttl",
				Definition: api.HealthCheckDefinition{DeregisterCriticalServiceAfter: api.ReadableDuration(dcsa), DeregisterCriticalServiceAfterDuration: dcsa},
			},
			ttl: ttl, deadline: now.Add(ttl), dcsa: dcsa,
		}
		if status == api.HealthCritical {
			c.critical = now
		}
		checks = append(checks, c)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	created := s.index + 1
	if old, ok := s.services[reg.ID]; ok {
		created = old.svc.CreateIndex
		for _, cid := range old.checks {
			delete(s.checks, cid)
		}
		s.touchLocked(old.svc.Service)
	}
	s.touchLocked(reg.Name)
	idx := s.index + 1
	svc := &service{svc: api.AgentService{
		ID: reg.ID, Service: reg.Name, Tags: slices.Clone(reg.Tags), Meta: reg.Meta,
		Port: reg.Port, Address: reg.Address, Weights: weights,
		EnableTagOverride: reg.EnableTagOverride, TaggedAddresses: reg.TaggedAddresses,
		CreateIndex: created, ModifyIndex: idx,
	}}
	if svc.svc.Tags == nil {
		svc.svc.Tags = []string{}
	}
	if svc.svc.Meta == nil {
		svc.svc.Meta = map[string]string{}
	}
	for _, c := range checks {
		c.hc.CreateIndex, c.hc.ModifyIndex = idx, idx
		s.checks[c.hc.CheckID] = c
		svc.checks = append(svc.checks, c.hc.CheckID)
	}
	s.services[reg.ID] = svc
	s.bumpLocked()
}

func (s *Server) deregister(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/agent/service/deregister/")
	s.mu.Lock()
	ok := s.deregisterLocked(id)
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("Unknown service ID %q. Ensure that the service ID is passed, not the service name.", id), http.StatusNotFound)
	}
}

var errUnknownCheck = errors.New("unknown check")

func (s *Server) checkUpdate(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/agent/check/")
	verb, id, ok := strings.Cut(rest, "/")
	if !ok || id == "" {
		http.NotFound(w, r)
		return
	}
	var status, output string
	switch verb {
	case "pass":
		status, output = api.HealthPassing, r.URL.Query().Get("note")
	case "warn":
		status, output = api.HealthWarning, r.URL.Query().Get("note")
	case "fail":
		status, output = api.HealthCritical, r.URL.Query().Get("note")
	case "update":
		var u struct{ Status, Output string }
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
			http.Error(w, fmt.Sprintf("Request decode failed: %v", err), http.StatusBadRequest)
			return
		}
		switch u.Status {
		case api.HealthPassing, api.HealthWarning, api.HealthCritical:
		default:
			http.Error(w, fmt.Sprintf("Invalid check status: '%s'", u.Status), http.StatusBadRequest)
			return
		}
		status, output = u.Status, u.Output
	default:
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	found := s.updateCheckLocked(id, status, output, time.Now())
	s.mu.Unlock()
	if !found {
		http.Error(w, fmt.Sprintf("%v: CheckID %q does not have associated TTL", errUnknownCheck, id), http.StatusNotFound)
	}
}

func (s *Server) agentService(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/agent/service/")
	s.mu.Lock()
	svc, ok := s.services[id]
	var as api.AgentService
	if ok {
		as = svc.svc
		as.Datacenter = Datacenter
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("unknown service ID: %s", id), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(as)
}
