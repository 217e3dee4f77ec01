package lb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc/serviceconfig"
)

// ErrInvalidConfig is wrapped by every configuration error; each balancer
// prefixes it with its own name.
var ErrInvalidConfig = errors.New("invalid balancer config")

// Defaults.
const (
	DefaultSubsetSize          = 100
	DefaultDecay               = 10 * time.Second
	DefaultProbeInterval       = time.Second
	DefaultConsecutiveFailures = 5
	DefaultFailureRate         = 0.5
	DefaultMinRequests         = 20
	DefaultInterval            = 10 * time.Second
	DefaultBaseEjectionTime    = 30 * time.Second
	DefaultMaxEjectionTime     = 300 * time.Second
	DefaultMaxEjectionPercent  = 10
	// DefaultPoolStreams is the stream limit a pool assumes of a server
	// until it knows the one advertised: many servers' default.
	DefaultPoolStreams = 100
)

// Config is the parsed configuration shared by grpckit's balancers.
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	// SubsetSize is how many endpoints get a SubConn; the others wait.
	SubsetSize int
	// Decay is the time constant of the latency EWMA (p2c).
	Decay time.Duration
	// ProbeInterval: an endpoint not picked for this long is picked once (p2c).
	ProbeInterval time.Duration
	// Ejection configures per-endpoint ejection.
	Ejection Ejection
	// Pool configures connections per endpoint.
	Pool PoolConfig
	// Client is the ID of the grpckit client that owns the channel (0
	// for others), for admin pages.
	Client int64
}

// PoolConfig configures how many connections each endpoint gets. The default,
// one, is what gRPC does: every call to an endpoint shares one HTTP/2
// connection, whose server allows a limited number of concurrent streams
// (often 100); calls beyond it wait.
type PoolConfig struct {
	// Conns is how many connections an endpoint gets from the start (≥ 1).
	Conns int
	// MaxConns is how many it may grow to (≥ Conns): a connection is added
	// when the least busy one carries three quarters of the streams its
	// server allows.
	MaxConns int
	// Streams is the stream limit assumed of a server until it advertises
	// its own (grpckit's client learns it from the server's HTTP/2
	// SETTINGS; with other clients it stays this).
	Streams uint32
}

// Ejection configures per-endpoint ejection.
type Ejection struct {
	// Disabled turns ejection off.
	Disabled bool
	// ConsecutiveFailures ejects after this many failures in a row; 0 turns
	// the check off.
	ConsecutiveFailures int64
	// FailureRate ejects when the share of failures in an Interval with at
	// least MinRequests calls reaches it; 0 turns the check off.
	FailureRate float64
	// MinRequests is the fewest calls in an Interval for FailureRate to apply.
	MinRequests int64
	// Interval is the failure-rate window.
	Interval time.Duration
	// BaseEjectionTime × times ejected (capped at MaxEjectionTime) is how
	// long an endpoint stays out.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps the ejection time.
	MaxEjectionTime time.Duration
	// MaxEjectionPercent is the largest share of endpoints ejected at once.
	MaxEjectionPercent int64
}

// DefaultConfig returns the configuration used when the JSON is empty.
func DefaultConfig() *Config {
	return &Config{
		SubsetSize:    DefaultSubsetSize,
		Decay:         DefaultDecay,
		ProbeInterval: DefaultProbeInterval,
		Pool:          PoolConfig{Conns: 1, MaxConns: 1, Streams: DefaultPoolStreams},
		Ejection: Ejection{
			ConsecutiveFailures: DefaultConsecutiveFailures,
			FailureRate:         DefaultFailureRate,
			MinRequests:         DefaultMinRequests,
			Interval:            DefaultInterval,
			BaseEjectionTime:    DefaultBaseEjectionTime,
			MaxEjectionTime:     DefaultMaxEjectionTime,
			MaxEjectionPercent:  DefaultMaxEjectionPercent,
		},
	}
}

type jsonEjection struct {
	Disabled            *bool    `json:"disabled"`
	ConsecutiveFailures *int64   `json:"consecutiveFailures"`
	FailureRate         *float64 `json:"failureRate"`
	MinRequests         *int64   `json:"minRequests"`
	Interval            *string  `json:"interval"`
	BaseEjectionTime    *string  `json:"baseEjectionTime"`
	MaxEjectionTime     *string  `json:"maxEjectionTime"`
	MaxEjectionPercent  *int64   `json:"maxEjectionPercent"`
}

type jsonPool struct {
	Conns    *int    `json:"conns"`
	MaxConns *int    `json:"maxConns"`
	Streams  *uint32 `json:"streams"`
}

type jsonConfig struct {
	Pool          *jsonPool     `json:"pool"`
	SubsetSize    *int          `json:"subsetSize"`
	Decay         *string       `json:"decay"`
	ProbeInterval *string       `json:"probeInterval"`
	Ejection      *jsonEjection `json:"ejection"`
	Client        int64         `json:"grpckitClient"`
}

// maxPoolConns bounds connections per endpoint.
const maxPoolConns = 64

// ParseConfig parses a balancer's JSON configuration. Absent fields take
// their defaults; unknown fields are ignored, as gRPC asks. Errors wrap
// [ErrInvalidConfig] and are prefixed with name.
func ParseConfig(name string, js []byte) (*Config, error) {
	cfg := DefaultConfig()
	if len(js) == 0 {
		return cfg, nil
	}
	var j jsonConfig
	if err := json.Unmarshal(js, &j); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalidConfig, err)
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s: %s", name, ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	dur := func(field string, s *string, dst *time.Duration) error {
		if s == nil {
			return nil
		}
		d, err := time.ParseDuration(*s)
		if err != nil {
			return bad(field, "%v", err)
		}
		if d <= 0 {
			return bad(field, "got %v, want > 0", d)
		}
		*dst = d
		return nil
	}
	cfg.Client = j.Client
	if j.SubsetSize != nil {
		if *j.SubsetSize < 1 {
			return nil, bad("subsetSize", "got %d, want >= 1", *j.SubsetSize)
		}
		cfg.SubsetSize = *j.SubsetSize
	}
	if p := j.Pool; p != nil {
		if p.Conns != nil {
			if *p.Conns < 1 || *p.Conns > maxPoolConns {
				return nil, bad("pool.conns", "got %d, want within [1, %d]", *p.Conns, maxPoolConns)
			}
			cfg.Pool.Conns, cfg.Pool.MaxConns = *p.Conns, *p.Conns
		}
		if p.MaxConns != nil {
			if *p.MaxConns < cfg.Pool.Conns || *p.MaxConns > maxPoolConns {
				return nil, bad("pool.maxConns", "got %d, want within [conns %d, %d]", *p.MaxConns, cfg.Pool.Conns, maxPoolConns)
			}
			cfg.Pool.MaxConns = *p.MaxConns
		}
		if p.Streams != nil {
			if *p.Streams < 1 {
				return nil, bad("pool.streams", "got %d, want >= 1", *p.Streams)
			}
			cfg.Pool.Streams = *p.Streams
		}
	}
	if err := dur("decay", j.Decay, &cfg.Decay); err != nil {
		return nil, err
	}
	if err := dur("probeInterval", j.ProbeInterval, &cfg.ProbeInterval); err != nil {
		return nil, err
	}
	if e := j.Ejection; e != nil {
		c := &cfg.Ejection
		if e.Disabled != nil {
			c.Disabled = *e.Disabled
		}
		if e.ConsecutiveFailures != nil {
			if *e.ConsecutiveFailures < 0 {
				return nil, bad("ejection.consecutiveFailures", "got %d, want >= 0", *e.ConsecutiveFailures)
			}
			c.ConsecutiveFailures = *e.ConsecutiveFailures
		}
		if e.FailureRate != nil {
			if r := *e.FailureRate; r < 0 || r > 1 || math.IsNaN(r) {
				return nil, bad("ejection.failureRate", "got %v, want within [0, 1]", r)
			}
			c.FailureRate = *e.FailureRate
		}
		if e.MinRequests != nil {
			if *e.MinRequests < 1 {
				return nil, bad("ejection.minRequests", "got %d, want >= 1", *e.MinRequests)
			}
			c.MinRequests = *e.MinRequests
		}
		if e.MaxEjectionPercent != nil {
			if p := *e.MaxEjectionPercent; p < 0 || p > 100 {
				return nil, bad("ejection.maxEjectionPercent", "got %d, want within [0, 100]", p)
			}
			c.MaxEjectionPercent = *e.MaxEjectionPercent
		}
		for _, d := range []struct {
			field string
			s     *string
			dst   *time.Duration
		}{
			{"ejection.interval", e.Interval, &c.Interval},
			{"ejection.baseEjectionTime", e.BaseEjectionTime, &c.BaseEjectionTime},
			{"ejection.maxEjectionTime", e.MaxEjectionTime, &c.MaxEjectionTime},
		} {
			if err := dur(d.field, d.s, d.dst); err != nil {
				return nil, err
			}
		}
		if c.MaxEjectionTime < c.BaseEjectionTime {
			return nil, bad("ejection.maxEjectionTime", "got %v, want >= baseEjectionTime %v", c.MaxEjectionTime, c.BaseEjectionTime)
		}
	}
	return cfg, nil
}
