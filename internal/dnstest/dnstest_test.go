package dnstest

import (
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func query(t *testing.T, s *Server, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s query %s: %v", proto, name, err)
	}
	return r
}

func TestServer(t *testing.T) {
	s := Start(t)
	s.SetSRV("_grpc._tcp.svc.test", SRV{Priority: 1, Weight: 5, Port: 8080, Target: "a.svc.test", TTL: 7})
	s.SetHost("a.svc.test", "127.0.0.1", "::1")

	tests := []struct {
		name    string
		setup   func()
		proto   string
		qname   string
		qtype   uint16
		rcode   int
		answers int
		extra   int
		trunc   bool
	}{
		{"srv udp", func() {}, "udp", "_grpc._tcp.svc.test", dns.TypeSRV, dns.RcodeSuccess, 1, 2, false},
		{"srv tcp no additional", func() { s.SetAdditional(false) }, "tcp", "_grpc._tcp.svc.test", dns.TypeSRV, dns.RcodeSuccess, 1, 0, false},
		{"a", func() {}, "udp", "a.svc.test", dns.TypeA, dns.RcodeSuccess, 1, 0, false},
		{"aaaa", func() {}, "udp", "a.svc.test", dns.TypeAAAA, dns.RcodeSuccess, 1, 0, false},
		{"unknown", func() {}, "udp", "nope.test", dns.TypeSRV, dns.RcodeNameError, 0, 0, false},
		{"nxdomain", func() { s.SetFailure("a.svc.test", NXDomain) }, "udp", "a.svc.test", dns.TypeA, dns.RcodeNameError, 0, 0, false},
		{"servfail", func() { s.SetFailure("a.svc.test", ServFail) }, "udp", "a.svc.test", dns.TypeA, dns.RcodeServerFailure, 0, 0, false},
		{"truncated udp", func() { s.SetFailure("a.svc.test", OK); s.SetTruncate(true) }, "udp", "_grpc._tcp.svc.test", dns.TypeSRV, dns.RcodeSuccess, 0, 0, true},
		{"full tcp", func() {}, "tcp", "_grpc._tcp.svc.test", dns.TypeSRV, dns.RcodeSuccess, 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			r := query(t, s, tt.proto, tt.qname, tt.qtype)
			if r.Rcode != tt.rcode || len(r.Answer) != tt.answers || len(r.Extra) != tt.extra || r.Truncated != tt.trunc {
				t.Errorf("got rcode %d, %d answers, %d extra, TC %v; want %d, %d, %d, %v",
					r.Rcode, len(r.Answer), len(r.Extra), r.Truncated, tt.rcode, tt.answers, tt.extra, tt.trunc)
			}
		})
	}
	if srv, ok := query(t, s, "tcp", "_grpc._tcp.svc.test", dns.TypeSRV).Answer[0].(*dns.SRV); !ok || srv.Hdr.Ttl != 7 || srv.Port != 8080 || srv.Weight != 5 {
		t.Errorf("got %v, want TTL 7, port 8080, weight 5", srv)
	}

	s.SetFailure("slow.test", Timeout)
	c := &dns.Client{Net: "udp", Timeout: 100e6}
	m := new(dns.Msg)
	m.SetQuestion("slow.test.", dns.TypeA)
	if _, _, err := c.Exchange(m, s.Addr()); err == nil {
		t.Error("timeout: got an answer, want none")
	}
	if got := s.Queries("tcp", "SRV"); got != 3 {
		t.Errorf("got %d TCP SRV queries, want 3", got)
	}
}
