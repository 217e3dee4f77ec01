package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo keeps `go -C examples run ./addsvc` true: it must succeed in
// both modes.
func TestDemo(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plaintext", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := run(tc.tls, 2, "127.0.0.1:0", false); err != nil {
				t.Fatalf("run(tls=%v) = %v, want nil", tc.tls, err)
			}
		})
	}
	if err := run(false, 0, "127.0.0.1:0", false); err == nil {
		t.Fatal("run with 0 servers succeeded, want an error")
	}
}
