// Package dnstest runs a real DNS server (github.com/miekg/dns) on
// 127.0.0.1, over UDP and TCP on the same port, serving SRV, A and AAAA
// records that tests change while it runs. It can answer NXDOMAIN or
// SERVFAIL, not answer at all (a timeout), and truncate UDP answers (TC
// bit set, the full answer only over TCP).
package dnstest

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Failure is how the server answers a name.
type Failure int

// Failures.
const (
	// OK answers normally (NXDOMAIN for a name without records).
	OK Failure = iota
	// NXDomain answers NXDOMAIN.
	NXDomain
	// ServFail answers SERVFAIL.
	ServFail
	// Timeout does not answer.
	Timeout
)

// SRV is one SRV record.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
	TTL                    uint32
}

// Server is a DNS server for tests. Create it with [Start].
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	closeOnce sync.Once

	mu         sync.Mutex
	srv        map[string][]SRV
	a          map[string][]net.IP
	aaaa       map[string][]net.IP
	hostTTL    uint32
	failures   map[string]Failure
	truncate   bool
	additional bool

	queries sync.Map // "udp SRV" etc. -> *atomic.Int64
}

// Start runs a server on 127.0.0.1 (UDP and TCP, one port) and shuts it
// down when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := New()
	if err != nil {
		tb.Fatalf("dnstest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// New runs a server on 127.0.0.1 (UDP and TCP, one port); Close stops it.
// Tests use [Start]; New serves examples.
func New() (*Server, error) {
	s := &Server{
		srv: map[string][]SRV{}, a: map[string][]net.IP{}, aaaa: map[string][]net.IP{},
		failures: map[string]Failure{}, hostTTL: 30, additional: true,
	}
	var err error
	for range 10 {
		if err = s.listen(); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		_ = pc.Close()
		return err
	}
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: lis, Handler: h}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	return nil
}

// Close shuts the server down. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
	})
}

// Addr returns the server's host:port (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// SetSRV sets the SRV records of name (a fully qualified or relative name;
// an empty list removes them).
func (s *Server) SetSRV(name string, recs ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[fqdn(name)] = append([]SRV(nil), recs...)
}

// SetHost sets the A and AAAA records of host from ips.
func (s *Server) SetHost(host string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := fqdn(host)
	s.a[h], s.aaaa[h] = nil, nil
	for _, v := range ips {
		ip := net.ParseIP(v)
		if ip == nil {
			continue
		}
		if ip4 := ip.To4(); ip4 != nil {
			s.a[h] = append(s.a[h], ip4)
		} else {
			s.aaaa[h] = append(s.aaaa[h], ip)
		}
	}
}

// SetHostTTL sets the TTL of A and AAAA records. Default 30.
func (s *Server) SetHostTTL(ttl uint32) {
	s.mu.Lock()
	s.hostTTL = ttl
	s.mu.Unlock()
}

// SetFailure makes the server answer every query for name with f.
func (s *Server) SetFailure(name string, f Failure) {
	s.mu.Lock()
	s.failures[fqdn(name)] = f
	s.mu.Unlock()
}

// SetTruncate makes UDP answers truncated: TC set, no records, so that
// clients must ask again over TCP.
func (s *Server) SetTruncate(on bool) {
	s.mu.Lock()
	s.truncate = on
	s.mu.Unlock()
}

// SetAdditional sets whether SRV answers carry the targets' A and AAAA
// records in the additional section. Default true.
func (s *Server) SetAdditional(on bool) {
	s.mu.Lock()
	s.additional = on
	s.mu.Unlock()
}

// Queries returns how many queries of type qtype ("SRV", "A", "AAAA")
// arrived over proto ("udp" or "tcp").
func (s *Server) Queries(proto, qtype string) int64 {
	if v, ok := s.queries.Load(proto + " " + qtype); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (s *Server) count(proto, qtype string) {
	v, _ := s.queries.LoadOrStore(proto+" "+qtype, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.count(proto, dns.TypeToString[q.Qtype])

	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.failures[name] {
	case Timeout:
		return
	case NXDomain:
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	case ServFail:
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	}
	exists := len(s.srv[name]) > 0 || len(s.a[name]) > 0 || len(s.aaaa[name]) > 0
	switch q.Qtype {
	case dns.TypeSRV:
		for _, r := range s.srv[name] {
			m.Answer = append(m.Answer, &dns.SRV{
				Hdr:      dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: r.TTL},
				Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: dns.Fqdn(r.Target),
			})
			if s.additional {
				m.Extra = append(m.Extra, s.hostRRs(dns.Fqdn(r.Target), dns.TypeA)...)
				m.Extra = append(m.Extra, s.hostRRs(dns.Fqdn(r.Target), dns.TypeAAAA)...)
			}
		}
	case dns.TypeA, dns.TypeAAAA:
		m.Answer = s.hostRRs(name, q.Qtype)
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	if proto == "udp" && s.truncate && len(m.Answer) > 0 {
		m.Truncated = true
		m.Answer, m.Extra = nil, nil
	}
	_ = w.WriteMsg(m)
}

func (s *Server) hostRRs(host string, qtype uint16) []dns.RR {
	var out []dns.RR
	hdr := dns.RR_Header{Name: host, Rrtype: qtype, Class: dns.ClassINET, Ttl: s.hostTTL}
	if qtype == dns.TypeA {
		for _, ip := range s.a[strings.ToLower(host)] {
			out = append(out, &dns.A{Hdr: hdr, A: ip})
		}
	} else {
		for _, ip := range s.aaaa[strings.ToLower(host)] {
			out = append(out, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
	}
	return out
}

func fqdn(name string) string { return strings.ToLower(dns.Fqdn(name)) }
