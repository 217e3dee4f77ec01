package discovery

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	tests := []struct {
		registry string
		want     []string
	}{
		{"consul", []string{"3 servers registered", "server 3 shut down", "failed calls: 0"}},
		{"dnssrv", []string{"priority 10", "falling back to priority 20", "failed calls: 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.registry, func(t *testing.T) {
			var out bytes.Buffer
			if err := Run(&out, tt.registry, ""); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			s := out.String()
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("output lacks %q:\n%s", w, s)
				}
			}
			if strings.Contains(s, "failed calls: ") && !strings.Contains(s, "failed calls: 0") {
				t.Errorf("output reports failed calls:\n%s", s)
			}
		})
	}
	if err := Run(&bytes.Buffer{}, "zookeeper", ""); err == nil {
		t.Error("unknown registry: got nil error")
	}
}
