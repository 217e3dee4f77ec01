package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/grpckit/grpckit/resolver"
)

// Lookup errors.
var (
	// ErrServerFailure is reported (wrapped) when the DNS server answers
	// with an error code other than NXDOMAIN (SERVFAIL, REFUSED...).
	ErrServerFailure = errors.New("dnssrv: server failure")
	// errNXDomain marks a name that does not exist.
	errNXDomain = errors.New("dnssrv: no such name")
)

// Metadata keys set on every endpoint.
const (
	// MetaTarget holds the SRV target the address came from.
	MetaTarget = "dns.target"
	// MetaPriority holds the SRV priority of the endpoint's group.
	MetaPriority = "dns.priority"
)

// lookup queries one DNS server.
type lookup struct {
	server  string
	timeout time.Duration
}

// exchange asks q over UDP, and again over TCP when the answer is
// truncated. NXDOMAIN returns errNXDomain with the answer.
func (l lookup) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(4096, false)
	c := &dns.Client{Net: "udp", Timeout: l.timeout}
	r, _, err := c.ExchangeContext(ctx, m, l.server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, l.server)
	}
	if err != nil {
		return nil, fmt.Errorf("dnssrv: %s %s via %s: %w", dns.TypeToString[qtype], name, l.server, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return r, nil
	case dns.RcodeNameError:
		return r, errNXDomain
	default:
		return nil, fmt.Errorf("%w: %s %s via %s: %s", ErrServerFailure, dns.TypeToString[qtype], name, l.server, dns.RcodeToString[r.Rcode])
	}
}

// answer is what one resolution found.
type answer struct {
	endpoints map[string]resolver.Endpoint
	ttl       uint32 // the smallest TTL of the records used
	hasTTL    bool
}

func (a *answer) seeTTL(ttl uint32) {
	if !a.hasTTL || ttl < a.ttl {
		a.ttl, a.hasTTL = ttl, true
	}
}

// resolve looks up name's SRV records and their targets' addresses.
func (l lookup) resolve(ctx context.Context, name string) (answer, error) {
	r, err := l.exchange(ctx, name, dns.TypeSRV)
	if errors.Is(err, errNXDomain) {
		// The service does not exist: a real, empty state. Refresh at
		// the negative-caching TTL (SOA minimum) when there is one.
		a := answer{endpoints: map[string]resolver.Endpoint{}}
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				a.seeTTL(min(soa.Hdr.Ttl, soa.Minttl))
			}
		}
		return a, nil
	}
	if err != nil {
		return answer{}, err
	}
	extra := additional(r.Extra)
	return choose(srvRecords(r.Answer), func(target string) ([]net.IP, uint32, error) {
		if ips, ok := extra[strings.ToLower(target)]; ok {
			return ips.ips, ips.ttl, nil
		}
		return l.addrs(ctx, target)
	})
}

// addrs resolves host to its A and AAAA addresses. A name without
// addresses (NXDOMAIN, NODATA) has none; other failures are errors.
func (l lookup) addrs(ctx context.Context, host string) ([]net.IP, uint32, error) {
	var ips []net.IP
	var ttl uint32
	seen := false
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r, err := l.exchange(ctx, host, qt)
		if errors.Is(err, errNXDomain) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
		for _, rr := range r.Answer {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A
			case *dns.AAAA:
				ip = v.AAAA
			default:
				continue
			}
			ips = append(ips, ip)
			if !seen || rr.Header().Ttl < ttl {
				ttl, seen = rr.Header().Ttl, true
			}
		}
	}
	return ips, ttl, nil
}

type hostAddrs struct {
	ips []net.IP
	ttl uint32
}

// additional collects the A and AAAA records of an answer's additional
// section, by lower-case owner name.
func additional(rrs []dns.RR) map[string]hostAddrs {
	m := map[string]hostAddrs{}
	for _, rr := range rrs {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		default:
			continue
		}
		k := strings.ToLower(rr.Header().Name)
		h, ok := m[k]
		if !ok || rr.Header().Ttl < h.ttl {
			h.ttl = rr.Header().Ttl
		}
		h.ips = append(h.ips, ip)
		m[k] = h
	}
	return m
}

// srvRecords returns the usable SRV records of an answer section: a
// target of "." means "no service here" (RFC 2782), and port 0 cannot be
// dialled.
func srvRecords(rrs []dns.RR) []*dns.SRV {
	var out []*dns.SRV
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok && s.Target != "." && s.Target != "" && s.Port != 0 {
			out = append(out, s)
		}
	}
	return out
}

// choose picks the lowest-priority group of records that has at least one
// address (RFC 2782: lower values first, fall back when a group has
// nothing), and returns its addresses weighted by the SRV weights. addrs
// resolves a target; an error there is an error of the whole resolution, so
// the last set is kept rather than a fallback group used by mistake.
func choose(srvs []*dns.SRV, addrs func(target string) ([]net.IP, uint32, error)) (answer, error) {
	a := answer{endpoints: map[string]resolver.Endpoint{}}
	byPrio := map[uint16][]*dns.SRV{}
	for _, s := range srvs {
		byPrio[s.Priority] = append(byPrio[s.Priority], s)
	}
	prios := make([]uint16, 0, len(byPrio))
	for p := range byPrio {
		prios = append(prios, p)
	}
	slices.Sort(prios)
	for _, p := range prios {
		var ttl uint32
		hasTTL := false
		see := func(t uint32) {
			if !hasTTL || t < ttl {
				ttl, hasTTL = t, true
			}
		}
		group := map[string]resolver.Endpoint{}
		for _, s := range byPrio[p] {
			see(s.Hdr.Ttl)
			ips, ipTTL, err := addrs(s.Target)
			if err != nil {
				return answer{}, err
			}
			if len(ips) > 0 {
				see(ipTTL)
			}
			for _, ip := range ips {
				if ip == nil || ip.IsUnspecified() {
					continue
				}
				addr := net.JoinHostPort(ip.String(), strconv.Itoa(int(s.Port)))
				key := strings.ToLower(s.Target) + "/" + addr
				ep := resolver.Endpoint{
					Addr:   addr,
					Weight: uint32(s.Weight),
					Metadata: map[string]string{
						MetaTarget:   strings.ToLower(s.Target),
						MetaPriority: strconv.Itoa(int(p)),
					},
				}
				if old, ok := group[key]; ok {
					// The same target and port listed twice: add weights.
					ep.Weight += old.Weight
				}
				group[key] = ep
			}
		}
		if len(group) > 0 {
			a.endpoints = group
			if hasTTL {
				a.seeTTL(ttl)
			}
			return a, nil
		}
		// Nothing in this group resolves: its TTLs still bound the
		// refresh, as it may come back.
		if hasTTL {
			a.seeTTL(ttl)
		}
	}
	return a, nil
}
