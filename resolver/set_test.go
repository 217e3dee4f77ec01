package resolver

import (
	"slices"
	"testing"
)

func published(s *endpointSet) []string {
	var out []string
	for _, ep := range s.list {
		e := FromGRPC(ep)
		out = append(out, e.Addr+"/"+e.Zone)
	}
	slices.Sort(out)
	return out
}

func TestEndpointSet(t *testing.T) {
	type step struct {
		put     string // key to put (empty: delete del)
		del     string
		ep      Endpoint
		changed bool
		want    []string
	}
	a := Endpoint{Addr: "10.0.0.1:80", Zone: "a"}
	a2 := Endpoint{Addr: "10.0.0.1:80", Zone: "a2"}
	b := Endpoint{Addr: "10.0.0.2:80", Zone: "b"}
	c := Endpoint{Addr: "10.0.0.3:80", Zone: "c"}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"add, same again, change, delete", []step{
			{put: "k1", ep: a, changed: true, want: []string{"10.0.0.1:80/a"}},
			{put: "k1", ep: a, changed: false, want: []string{"10.0.0.1:80/a"}},
			{put: "k1", ep: a2, changed: true, want: []string{"10.0.0.1:80/a2"}},
			{del: "k1", changed: true, want: nil},
			{del: "k1", changed: false, want: nil},
		}},
		{"swap-remove keeps the index right", []step{
			{put: "k1", ep: a, changed: true, want: []string{"10.0.0.1:80/a"}},
			{put: "k2", ep: b, changed: true, want: []string{"10.0.0.1:80/a", "10.0.0.2:80/b"}},
			{put: "k3", ep: c, changed: true, want: []string{"10.0.0.1:80/a", "10.0.0.2:80/b", "10.0.0.3:80/c"}},
			{del: "k1", changed: true, want: []string{"10.0.0.2:80/b", "10.0.0.3:80/c"}},
			{put: "k3", ep: Endpoint{Addr: c.Addr, Zone: "c2"}, changed: true, want: []string{"10.0.0.2:80/b", "10.0.0.3:80/c2"}},
			{del: "k2", changed: true, want: []string{"10.0.0.3:80/c2"}},
		}},
		{"two keys, one address", []step{
			{put: "k2", ep: a2, changed: true, want: []string{"10.0.0.1:80/a2"}},
			{put: "k1", ep: a, changed: true, want: []string{"10.0.0.1:80/a"}}, // smallest key wins
			{put: "k2", ep: Endpoint{Addr: a.Addr, Zone: "x"}, changed: false, want: []string{"10.0.0.1:80/a"}},
			{del: "k1", changed: true, want: []string{"10.0.0.1:80/x"}},
			{del: "k2", changed: true, want: nil},
		}},
		{"key moves address", []step{
			{put: "k1", ep: a, changed: true, want: []string{"10.0.0.1:80/a"}},
			{put: "k1", ep: b, changed: true, want: []string{"10.0.0.2:80/b"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newEndpointSet()
			for i, st := range tc.steps {
				var got bool
				if st.put != "" {
					got = s.put(st.put, st.ep)
				} else {
					got = s.delete(st.del)
				}
				if got != st.changed {
					t.Errorf("step %d: changed = %v, want %v", i, got, st.changed)
				}
				if p := published(&s); !slices.Equal(p, st.want) {
					t.Errorf("step %d: published %v, want %v", i, p, st.want)
				}
			}
		})
	}
}

func TestEndpointSetReplace(t *testing.T) {
	s := newEndpointSet()
	m := map[string]Endpoint{"a": {Addr: "10.0.0.1:1"}, "b": {Addr: "10.0.0.2:1"}}
	if !s.replace(m) {
		t.Fatal("first replace: changed = false, want true")
	}
	if s.replace(map[string]Endpoint{"a": {Addr: "10.0.0.1:1"}, "b": {Addr: "10.0.0.2:1"}}) {
		t.Error("identical replace: changed = true, want false")
	}
	if !s.replace(map[string]Endpoint{"b": {Addr: "10.0.0.2:1"}}) || s.len() != 1 {
		t.Errorf("replace without a: len %d, want 1", s.len())
	}
	if !s.replace(nil) || s.len() != 0 {
		t.Errorf("replace with nothing: len %d, want 0", s.len())
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"etcd:///addsvc", "etcd://auth/addsvc?x=1", "etcd:///a/b", "etcd:///", "etcd:addsvc",
		"dnssrv:///_grpc._tcp.example.com", "etcd:///%2e%2e", "etcd:///..", "etcd:///" + string(make([]byte, 300))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseURL(s)
		if err != nil {
			return
		}
		pt, err := ParseTarget(u)
		if err != nil {
			return
		}
		if ValidateService(pt.Service) != nil {
			t.Fatalf("ParseTarget(%q) accepted service %q that ValidateService rejects", s, pt.Service)
		}
		for _, c := range []byte(pt.Service) {
			if c == '/' {
				t.Fatalf("ParseTarget(%q) = service %q with a slash", s, pt.Service)
			}
		}
	})
}
