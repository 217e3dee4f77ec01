package dnssrv

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/grpckit/grpckit/internal/dnstest"
)

// BenchmarkResolve measures one resolution (SRV with 3 targets, addresses
// in the additional section) beside a bare miekg/dns SRV exchange on the
// same server.
func BenchmarkResolve(b *testing.B) {
	d := dnstest.Start(b)
	for i := range 3 {
		host := fmt.Sprintf("h%d.svc.test", i)
		d.SetHost(host, "127.0.0.1")
		defer d.SetHost(host)
	}
	d.SetSRV(name,
		dnstest.SRV{Priority: 1, Weight: 1, Port: 1, Target: "h0.svc.test", TTL: 30},
		dnstest.SRV{Priority: 1, Weight: 1, Port: 2, Target: "h1.svc.test", TTL: 30},
		dnstest.SRV{Priority: 2, Weight: 1, Port: 3, Target: "h2.svc.test", TTL: 30})
	b.Run("bare-exchange", func(b *testing.B) {
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		m := new(dns.Msg)
		m.SetQuestion(name+".", dns.TypeSRV)
		for b.Loop() {
			if _, _, err := c.Exchange(m, d.Addr()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resolve", func(b *testing.B) {
		b.ReportAllocs()
		l := lookup{server: d.Addr(), timeout: time.Second}
		for b.Loop() {
			if _, err := l.resolve(context.Background(), name+"."); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkChoose runs the selection over 1000 records in 4 priority
// groups, beside time.Now.
func BenchmarkChoose(b *testing.B) {
	var srvs []*dns.SRV
	for i := range 1000 {
		srvs = append(srvs, &dns.SRV{Hdr: dns.RR_Header{Ttl: 30}, Priority: uint16(i % 4), Weight: 1, Port: uint16(1 + i), Target: fmt.Sprintf("h%d.test.", i)})
	}
	ip := []net.IP{net.ParseIP("127.0.0.1")}
	addrs := func(string) ([]net.IP, uint32, error) { return ip, 30, nil }
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			_ = time.Now()
		}
	})
	b.Run("1000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := choose(srvs, addrs); err != nil {
				b.Fatal(err)
			}
		}
	})
}
