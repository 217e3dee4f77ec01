package lb

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, js string
		check    func(*Config) bool
		err      string
	}{
		{"empty", ``, func(c *Config) bool { return *c == *DefaultConfig() }, ""},
		{"empty object", `{}`, func(c *Config) bool { return *c == *DefaultConfig() }, ""},
		{"unknown fields ignored", `{"future":1,"ejection":{"x":2}}`, func(c *Config) bool { return *c == *DefaultConfig() }, ""},
		{"all fields", `{"subsetSize":7,"decay":"2s","probeInterval":"250ms","ejection":{"disabled":true,"consecutiveFailures":0,"failureRate":0.2,"minRequests":3,"interval":"1s","baseEjectionTime":"1s","maxEjectionTime":"4s","maxEjectionPercent":100}}`,
			func(c *Config) bool {
				e := c.Ejection
				return c.SubsetSize == 7 && c.Decay == 2*time.Second && c.ProbeInterval == 250*time.Millisecond &&
					e.Disabled && e.ConsecutiveFailures == 0 && e.FailureRate == 0.2 && e.MinRequests == 3 &&
					e.Interval == time.Second && e.BaseEjectionTime == time.Second && e.MaxEjectionTime == 4*time.Second && e.MaxEjectionPercent == 100
			}, ""},
		{"not json", `{`, nil, "unexpected end"},
		{"wrong type", `{"subsetSize":"ten"}`, nil, "cannot unmarshal"},
		{"subset zero", `{"subsetSize":0}`, nil, "subsetSize"},
		{"decay unparsable", `{"decay":"10"}`, nil, "decay"},
		{"decay negative", `{"decay":"-1s"}`, nil, "decay"},
		{"probe zero", `{"probeInterval":"0s"}`, nil, "probeInterval"},
		{"failures negative", `{"ejection":{"consecutiveFailures":-1}}`, nil, "consecutiveFailures"},
		{"rate above 1", `{"ejection":{"failureRate":1.5}}`, nil, "failureRate"},
		{"min requests zero", `{"ejection":{"minRequests":0}}`, nil, "minRequests"},
		{"percent negative", `{"ejection":{"maxEjectionPercent":-5}}`, nil, "maxEjectionPercent"},
		{"max below base", `{"ejection":{"baseEjectionTime":"10s","maxEjectionTime":"5s"}}`, nil, "maxEjectionTime"},
		{"interval bad", `{"ejection":{"interval":"often"}}`, nil, "ejection.interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("p2c", []byte(tc.js))
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "p2c: ") {
					t.Fatalf("got error %v, want one wrapping ErrInvalidConfig, prefixed p2c:, mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !tc.check(c) {
				t.Errorf("got %+v, want the values given", c)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"subsetSize":3}`, `{"decay":"1s","ejection":{"failureRate":0.5,"maxEjectionPercent":50}}`,
		`{"ejection":{"baseEjectionTime":"1h","maxEjectionTime":"1ns"}}`, `[1,2]`, `null`, `{"subsetSize":-9223372036854775808}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		c, err := ParseConfig("p2c", js)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		e := c.Ejection
		if c.SubsetSize < 1 || c.Decay <= 0 || c.ProbeInterval <= 0 || e.ConsecutiveFailures < 0 || e.FailureRate < 0 || e.FailureRate > 1 ||
			e.MinRequests < 1 || e.Interval <= 0 || e.BaseEjectionTime <= 0 || e.MaxEjectionTime < e.BaseEjectionTime ||
			e.MaxEjectionPercent < 0 || e.MaxEjectionPercent > 100 {
			t.Fatalf("accepted an invalid config %+v from %q", c, js)
		}
	})
}
