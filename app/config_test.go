package app_test

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/grpckit/grpckit/app"
)

func TestLoad(t *testing.T) {
	env := map[string]string{"GRPCKIT_ADDR": ":9000", "GRPCKIT_DRAIN_DELAY": "2s", "GRPCKIT_LOG_LEVEL": "debug"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		name string
		args []string
		want app.Config
	}{
		{"defaults and environment", nil, func() app.Config {
			c := app.Defaults()
			c.Addr, c.DrainDelay, c.LogLevel = ":9000", 2*time.Second, slog.LevelDebug
			return c
		}()},
		{"flags override the environment", []string{"-addr", "127.0.0.1:7000", "-drain-delay=1s", "-log-format", "text", "-admin-addr="}, func() app.Config {
			c := app.Defaults()
			c.Addr, c.DrainDelay, c.LogLevel, c.LogFormat, c.AdminAddr = "127.0.0.1:7000", time.Second, slog.LevelDebug, "text", ""
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := app.Load("svc", tc.args, getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		name   string
		args   []string
		getenv func(string) string
	}{
		{"bad duration in the environment", nil, func(k string) string {
			if k == "GRPCKIT_SHUTDOWN_TIMEOUT" {
				return "soon"
			}
			return ""
		}},
		{"bad level", []string{"-log-level", "loud"}, none},
		{"bad format", []string{"-log-format", "xml"}, none},
		{"drain longer than the shutdown", []string{"-drain-delay", "1m"}, none},
		{"empty gRPC address", []string{"-addr="}, none},
		{"stray argument", []string{"extra"}, none},
		{"unknown flag", []string{"-port", "1"}, none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := app.Load("svc", tc.args, tc.getenv, io.Discard); err == nil {
				t.Errorf("got %+v, want an error", c)
			}
		})
	}
	if _, err := app.Load("svc", []string{"-h"}, none, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got %v, want flag.ErrHelp", err)
	}
}
