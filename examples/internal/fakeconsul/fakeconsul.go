// Package fakeconsul runs, inside the demo process, the part of a Consul
// agent's HTTP API that grpckit's Consul registrar and resolver use, so that
// the demo runs without a Consul binary. It stands in for a real agent
// (consul agent -dev); the demo takes one's address instead with -consul.
//
// It follows Consul's documented semantics for what it serves: the JSON is
// encoded from consul/api's own structs, blocking queries block until the
// index moves past the one asked for or the wait ends, TTL checks turn
// critical when not updated in time, and DeregisterCriticalServiceAfter
// removes a service whose check stayed critical.
//
//	GET /v1/health/service/<name>   passing, tag (repeatable), index, wait
//	PUT /v1/agent/service/register  TTL checks only
//	PUT /v1/agent/service/deregister/<id>
//	PUT /v1/agent/check/pass|warn|fail/<check-id>   note
//	PUT /v1/agent/check/update/<check-id>           {"Status","Output"}
//	GET /v1/agent/service/<id>
package fakeconsul

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// The node and datacenter the agent reports.
const (
	nodeName    = "fakeconsul"
	datacenter  = "dc1"
	nodeAddress = "127.0.0.1"
)

// Blocking query limits, as Consul documents them.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

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
// listener.
type Server struct {
	addr   string
	http   *http.Server
	served chan struct{}

	mu        sync.Mutex
	index     uint64            // the cluster's raft index
	nameIndex map[string]uint64 // last index that touched a service name
	services  map[string]*service
	checks    map[string]*check
	changed   chan struct{} // closed and replaced on every change
	closed    bool

	stopReaper chan struct{}
	reaperDone chan struct{}
}

// New runs an agent listening on addr ("127.0.0.1:0" for any free port);
// Close stops it.
func New(addr string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		addr:       lis.Addr().String(),
		served:     make(chan struct{}),
		index:      1,
		nameIndex:  map[string]uint64{},
		services:   map[string]*service{},
		checks:     map[string]*check{},
		changed:    make(chan struct{}),
		stopReaper: make(chan struct{}),
		reaperDone: make(chan struct{}),
	}
	s.http = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.http.Serve(lis)
	}()
	go s.reaper()
	return s, nil
}

// Addr returns the agent's host:port, for api.Config.Address.
func (s *Server) Addr() string { return s.addr }

// Close stops the agent and its goroutines. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	_ = s.http.Close()
	<-s.served
	close(s.stopReaper)
	<-s.reaperDone
}

// bumpLocked advances the index and wakes blocking queries.
func (s *Server) bumpLocked() uint64 {
	s.index++
	close(s.changed)
	s.changed = make(chan struct{})
	return s.index
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
	c.deadline = now.Add(c.ttl)
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
	t := time.NewTicker(10 * time.Millisecond)
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
		if now.After(c.deadline) && c.hc.Status != api.HealthCritical {
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
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/health/service/"):
		method(w, r, http.MethodGet, s.healthService)
	case p == "/v1/agent/service/register":
		method(w, r, http.MethodPut, s.register)
	case strings.HasPrefix(p, "/v1/agent/service/deregister/"):
		method(w, r, http.MethodPut, s.deregister)
	case strings.HasPrefix(p, "/v1/agent/check/"):
		method(w, r, http.MethodPut, s.checkUpdate)
	case strings.HasPrefix(p, "/v1/agent/service/"):
		method(w, r, http.MethodGet, s.agentService)
	default:
		http.NotFound(w, r)
	}
}

func method(w http.ResponseWriter, r *http.Request, m string, h http.HandlerFunc) {
	if r.Method != m {
		w.Header().Set("Allow", m)
		http.Error(w, fmt.Sprintf("method %s not allowed", r.Method), http.StatusMethodNotAllowed)
		return
	}
	h(w, r)
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
	return min(d, maxWait), nil
}

func (s *Server) healthService(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/v1/health/service/")
	q := r.URL.Query()
	if name == "" {
		http.Error(w, "Missing service name", http.StatusBadRequest)
		return
	}
	var minIndex uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "Invalid index", http.StatusBadRequest)
			return
		}
		minIndex = n
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, passing := q["passing"]
	if v := q.Get("passing"); v != "" {
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
		// Block while the index is not past the one asked for.
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
	var ids []string
	for id, svc := range s.services {
		if svc.svc.Service == name {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := make([]*api.ServiceEntry, 0, len(ids))
next:
	for _, id := range ids {
		svc := s.services[id]
		for _, t := range tags {
			if !slices.Contains(svc.svc.Tags, t) {
				continue next
			}
		}
		// Every Consul node carries the serf health check.
		checks := api.HealthChecks{{
			Node: nodeName, CheckID: "serfHealth", Name: "Serf Health Status", Status: api.HealthPassing,
			Output: "Agent alive and reachable", CreateIndex: 1, ModifyIndex: 1,
		}}
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
				Node: nodeName, Address: nodeAddress, Datacenter: datacenter,
				TaggedAddresses: map[string]string{"lan": nodeAddress, "wan": nodeAddress},
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
	h.Set("X-Consul-Index", strconv.FormatUint(index, 10))
	h.Set("X-Consul-KnownLeader", "true")
	h.Set("X-Consul-LastContact", "0")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var reg api.AgentServiceRegistration
	if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
		http.Error(w, fmt.Sprintf("Request decode failed: %v", err), http.StatusBadRequest)
		return
	}
	if reg.Name == "" {
		http.Error(w, "Missing service name", http.StatusBadRequest)
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
		ttl, err := time.ParseDuration(d.TTL)
		if err != nil || ttl <= 0 {
			http.Error(w, fmt.Sprintf("fakeconsul supports TTL checks only: TTL %q", d.TTL), http.StatusBadRequest)
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
				Node: nodeName, CheckID: id, Name: name, Status: status, Notes: d.Notes,
				ServiceID: reg.ID, ServiceName: reg.Name, Type: "ttl",
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

func (s *Server) checkUpdate(w http.ResponseWriter, r *http.Request) {
	verb, id, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/agent/check/"), "/")
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
		http.Error(w, fmt.Sprintf("CheckID %q does not have associated TTL", id), http.StatusNotFound)
	}
}

func (s *Server) agentService(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/agent/service/")
	s.mu.Lock()
	svc, ok := s.services[id]
	var as api.AgentService
	if ok {
		as = svc.svc
		as.Datacenter = datacenter
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("unknown service ID: %s", id), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(as)
}
