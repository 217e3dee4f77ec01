// Package fakedns runs a small DNS server (github.com/miekg/dns) on
// 127.0.0.1, over UDP and TCP on the same port, serving SRV, A and AAAA
// records that the demo changes while it runs. It stands in for the DNS a
// real deployment publishes its backends in (a Kubernetes headless
// service, for one).
package fakedns

import (
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// SRV is one SRV record.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string
	TTL                    uint32
}

// hostTTL is the TTL of A and AAAA records.
const hostTTL = 30

// Server is a running DNS server.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	closeOnce sync.Once

	mu   sync.Mutex
	srv  map[string][]SRV
	a    map[string][]net.IP
	aaaa map[string][]net.IP
}

// New runs a server on 127.0.0.1 (UDP and TCP, one port); Close stops it.
func New() (*Server, error) {
	s := &Server{srv: map[string][]SRV{}, a: map[string][]net.IP{}, aaaa: map[string][]net.IP{}}
	var err error
	// The UDP port may be taken for TCP: try a few.
	for range 10 {
		if err = s.listen(); err == nil {
			return s, nil
		}
	}
	return nil, err
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

// SetSRV sets the SRV records of name (an empty list removes them).
func (s *Server) SetSRV(name string, recs ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[fqdn(name)] = append([]SRV(nil), recs...)
}

// SetHost sets the A and AAAA records of host from ips (none removes them).
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

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
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

	s.mu.Lock()
	defer s.mu.Unlock()
	switch q.Qtype {
	case dns.TypeSRV:
		for _, r := range s.srv[name] {
			target := dns.Fqdn(r.Target)
			m.Answer = append(m.Answer, &dns.SRV{
				Hdr:      dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: r.TTL},
				Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target,
			})
			// The targets' addresses ride along, as most servers send them.
			m.Extra = append(m.Extra, s.hostRRs(target, dns.TypeA)...)
			m.Extra = append(m.Extra, s.hostRRs(target, dns.TypeAAAA)...)
		}
	case dns.TypeA, dns.TypeAAAA:
		m.Answer = s.hostRRs(name, q.Qtype)
	}
	if len(s.srv[name]) == 0 && len(s.a[name]) == 0 && len(s.aaaa[name]) == 0 {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

func (s *Server) hostRRs(host string, qtype uint16) []dns.RR {
	var out []dns.RR
	hdr := dns.RR_Header{Name: host, Rrtype: qtype, Class: dns.ClassINET, Ttl: hostTTL}
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
