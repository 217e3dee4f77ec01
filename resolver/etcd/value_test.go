package etcd

import (
	"errors"
	"testing"

	"github.com/grpckit/grpckit/resolver"
)

func TestDecodeEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want resolver.Endpoint
		ok   bool
	}{
		{"full", `{"address":"10.0.0.7:8080","weight":10,"zone":"eu-1a","version":"1.4.2","metadata":{"k":"v"}}`,
			resolver.Endpoint{Addr: "10.0.0.7:8080", Weight: 10, Zone: "eu-1a", Version: "1.4.2", Metadata: map[string]string{"k": "v"}}, true},
		{"address only", `{"address":"[::1]:80"}`, resolver.Endpoint{Addr: "[::1]:80"}, true},
		{"unknown fields ignored", `{"address":"h:1","future":true}`, resolver.Endpoint{Addr: "h:1"}, true},
		{"not json", `not json`, resolver.Endpoint{}, false},
		{"empty", ``, resolver.Endpoint{}, false},
		{"no address", `{"weight":1}`, resolver.Endpoint{}, false},
		{"no port", `{"address":"h"}`, resolver.Endpoint{}, false},
		{"port 0", `{"address":"h:0"}`, resolver.Endpoint{}, false},
		{"named port", `{"address":"h:http"}`, resolver.Endpoint{}, false},
		{"negative weight", `{"address":"h:1","weight":-1}`, resolver.Endpoint{}, false},
		{"trailing", `{"address":"h:1"}x`, resolver.Endpoint{}, false},
		{"array", `[]`, resolver.Endpoint{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeEndpoint([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("decodeEndpoint(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadValue) {
				t.Errorf("error %v does not wrap ErrBadValue", err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("decodeEndpoint(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzDecodeEndpoint(f *testing.F) {
	for _, s := range []string{
		`{"address":"10.0.0.7:8080","weight":10,"zone":"eu-1a","version":"1.4.2","metadata":{"k":"v"}}`,
		`{"address":"[::1]:80"}`, `{"address":"h"}`, `{"address":1}`, `{"metadata":{"a":1}}`,
		`null`, `{}`, `{"address":"h:1"} {}`, "\x00", `{"weight":4294967296,"address":"h:1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := decodeEndpoint(v)
		if err != nil {
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded an invalid endpoint %+v: %v", e, err)
		}
		enc, err := encodeEndpoint(e)
		if err != nil {
			t.Fatalf("encode %+v: %v", e, err)
		}
		back, err := decodeEndpoint([]byte(enc))
		if err != nil || !back.Equal(e) {
			t.Fatalf("round trip of %+v: got %+v, %v", e, back, err)
		}
	})
}
