package balancer_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/balancer/internal/lbtest"
	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/balancer/wrr"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// value returns the metric name's value for endpoint addr of the balancer
// whose target is target.
func value(t *testing.T, reg *prometheus.Registry, name, target, addr string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["target"] == target && l["endpoint"] == addr {
				return metricValue(m), true
			}
		}
	}
	return 0, false
}

func metricValue(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

func TestCollector(t *testing.T) {
	for _, name := range []string{p2c.Name, wrr.Name} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(balancer.NewCollector())
			bs := lbtest.Start(t, 2)
			cfg := `{"ejection":{"consecutiveFailures":2,"maxEjectionPercent":50}}`
			c := lbtest.Dial(t, name, cfg, lbtest.Endpoints(bs, 1, 4))
			c.WaitReady(t, 2)
			echo := echov1.NewEchoServiceClient(c)
			bs[0].Fail.Store(true)
			for range 20 {
				_, _ = echo.Echo(context.Background(), &echov1.EchoRequest{Message: "hi"})
			}
			calls := func(i int) float64 {
				v, _ := value(t, reg, "grpckit_balancer_endpoint_calls_total", c.Target, bs[i].Addr)
				return v
			}
			if got, want := calls(0)+calls(1), 20.0; got != want {
				t.Errorf("calls_total summed: got %v, want %v", got, want)
			}
			if got, want := calls(0), float64(bs[0].Served.Load()); got != want {
				t.Errorf("calls_total of the failing endpoint: got %v, want %v (served)", got, want)
			}
			for _, tc := range []struct {
				metric string
				i      int
				want   float64
			}{
				{"grpckit_balancer_endpoint_ejected", 0, 1},
				{"grpckit_balancer_endpoint_ejections_total", 0, 1},
				{"grpckit_balancer_endpoint_failures_total", 0, 2},
				{"grpckit_balancer_endpoint_ejected", 1, 0},
				{"grpckit_balancer_endpoint_weight", 1, 4},
				{"grpckit_balancer_endpoint_ready", 1, 1},
				{"grpckit_balancer_endpoint_in_flight", 1, 0},
			} {
				got, ok := value(t, reg, tc.metric, c.Target, bs[tc.i].Addr)
				if !ok || got != tc.want {
					t.Errorf("%s{endpoint %d}: got %v (found %v), want %v", tc.metric, tc.i, got, ok, tc.want)
				}
			}

			// A call in flight shows.
			bs[1].Delay.Store(int64(time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = echo.Echo(ctx, &echov1.EchoRequest{Message: "hi"})
			}()
			lbtest.WaitFor(t, 5*time.Second, "in_flight 1", func() bool {
				v, _ := value(t, reg, "grpckit_balancer_endpoint_in_flight", c.Target, bs[1].Addr)
				return v == 1
			})
			cancel()
			<-done

			// A closed client is no longer reported.
			_ = c.Close()
			if _, ok := value(t, reg, "grpckit_balancer_endpoint_ready", c.Target, bs[1].Addr); ok {
				t.Errorf("after Close: got metrics for the closed client, want none")
			}
		})
	}
}
