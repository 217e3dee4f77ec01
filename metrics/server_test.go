package metrics_test

import (
	"strings"
	"testing"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/metrics"
	"github.com/grpckit/grpckit/server"
)

// Series created from a server's registry are on the admin handler's
// /metrics, beside the server's and the Go runtime's.
func TestServerRegistry(t *testing.T) {
	srv, err := server.New(grpckit.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	calcs, err := metrics.Prometheus(srv.Registry()).Counter("app_calculations_total", "Calculations, by operation.", "op")
	if err != nil {
		t.Fatal(err)
	}
	calcs.With("sum").Inc()
	h, err := admin.New()
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, h, "/metrics")
	for _, want := range []string{`app_calculations_total{op="sum"} 1`, "go_goroutines ", "process_"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
