package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Config is what a service takes from its environment: listen addresses,
// shutdown timing and logging. [Load] fills it from the defaults, then the
// environment, then the command line, each overriding the one before:
//
//	setting           flag               environment                default
//	gRPC address      -addr              GRPCKIT_ADDR               :8080
//	HTTP address      -http-addr         GRPCKIT_HTTP_ADDR          "" (no HTTP port)
//	admin address     -admin-addr        GRPCKIT_ADMIN_ADDR         127.0.0.1:9090
//	drain delay       -drain-delay       GRPCKIT_DRAIN_DELAY        5s
//	shutdown timeout  -shutdown-timeout  GRPCKIT_SHUTDOWN_TIMEOUT   30s
//	log level         -log-level         GRPCKIT_LOG_LEVEL          info
//	log format        -log-format        GRPCKIT_LOG_FORMAT         json
//
// The drain delay is how long a server keeps serving after it turned
// NOT_SERVING and deregistered, so that resolvers and load balancers stop
// sending to it (set it above your health-check and discovery intervals;
// Kubernetes: above the readiness probe's period). The shutdown timeout
// bounds the whole graceful shutdown: at its end, calls still in flight
// are cancelled. The admin endpoint (package admin) listens on loopback by
// default: expose it only where operators reach it.
//
// Configuration files are left to the platform (a ConfigMap as environment
// variables), which keeps a service's configuration in one place and its
// binary free of a configuration library.
type Config struct {
	Addr            string
	HTTPAddr        string
	AdminAddr       string
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	LogFormat       string // "json" or "text"
}

// Defaults returns the defaults of the table above.
func Defaults() Config {
	return Config{Addr: ":8080", AdminAddr: "127.0.0.1:9090", DrainDelay: 5 * time.Second,
		ShutdownTimeout: 30 * time.Second, LogLevel: slog.LevelInfo, LogFormat: "json"}
}

// setting is one row of the table.
type setting struct {
	flag, env, usage string
	value            func(*Config) flag.Value
}

var settings = []setting{
	{"addr", "GRPCKIT_ADDR", "gRPC listen address", func(c *Config) flag.Value { return (*stringValue)(&c.Addr) }},
	{"http-addr", "GRPCKIT_HTTP_ADDR", "HTTP (gateway) listen address; empty for none", func(c *Config) flag.Value { return (*stringValue)(&c.HTTPAddr) }},
	{"admin-addr", "GRPCKIT_ADMIN_ADDR", "admin page, /metrics and /healthz listen address; empty for none", func(c *Config) flag.Value { return (*stringValue)(&c.AdminAddr) }},
	{"drain-delay", "GRPCKIT_DRAIN_DELAY", "how long to keep serving after turning NOT_SERVING on shutdown", func(c *Config) flag.Value { return (*durationValue)(&c.DrainDelay) }},
	{"shutdown-timeout", "GRPCKIT_SHUTDOWN_TIMEOUT", "bound on the whole graceful shutdown", func(c *Config) flag.Value { return (*durationValue)(&c.ShutdownTimeout) }},
	{"log-level", "GRPCKIT_LOG_LEVEL", "log level: debug, info, warn, error", func(c *Config) flag.Value { return (*levelValue)(&c.LogLevel) }},
	{"log-format", "GRPCKIT_LOG_FORMAT", "log format: json or text", func(c *Config) flag.Value { return (*formatValue)(&c.LogFormat) }},
}

// Load returns the configuration from the defaults, the environment
// (getenv, os.Getenv when nil) and the command-line arguments (without the
// program name), in that order of precedence. The flag set is named name;
// -h prints the table's flags with their environment variables and
// returns flag.ErrHelp.
func Load(name string, args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Defaults()
	var errs []error
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.value(&c).Set(v); err != nil {
				errs = append(errs, fmt.Errorf("app: %s=%q: %w", s.env, v, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if stderr != nil {
		fs.SetOutput(stderr)
	}
	for _, s := range settings {
		fs.Var(s.value(&c), s.flag, s.usage+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("app: unexpected arguments %q", fs.Args())
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c Config) validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("app: the gRPC address is empty"))
	}
	if c.DrainDelay < 0 || c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("app: drain delay %v and shutdown timeout %v: want >= 0 and > 0", c.DrainDelay, c.ShutdownTimeout))
	}
	if c.DrainDelay >= c.ShutdownTimeout {
		errs = append(errs, fmt.Errorf("app: drain delay %v must be shorter than the shutdown timeout %v", c.DrainDelay, c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Logger returns a logger writing to w at the configured level and format.
func (c Config) Logger(w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

type stringValue string

func (v *stringValue) String() string     { return string(*v) }
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }

type durationValue time.Duration

func (v *durationValue) String() string { return time.Duration(*v).String() }
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*v = durationValue(d)
	return nil
}

type levelValue slog.Level

func (v *levelValue) String() string     { return strings.ToLower(slog.Level(*v).String()) }
func (v *levelValue) Set(s string) error { return (*slog.Level)(v).UnmarshalText([]byte(s)) }

type formatValue string

func (v *formatValue) String() string { return string(*v) }
func (v *formatValue) Set(s string) error {
	if s != "json" && s != "text" {
		return fmt.Errorf("want json or text, got %q", s)
	}
	*v = formatValue(s)
	return nil
}
