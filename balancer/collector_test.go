package balancer_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/balancer/internal/lbtest"
	"github.com/grpckit/grpckit/balancer/p2c"
	"github.com/grpckit/grpckit/balancer/wrr"
	"github.com/grpckit/grpckit/internal/wait"
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
			wait.For(t, 5*time.Second, "in_flight 1", func() bool {
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

func TestSnapshot(t *testing.T) {
	bs := lbtest.Start(t, 2)
	bs[1].Delay.Store(int64(5 * time.Millisecond))
	c := lbtest.Dial(t, p2c.Name, "", lbtest.Endpoints(bs, 2, 0))
	c.WaitReady(t, 2)
	echo := echov1.NewEchoServiceClient(c)
	for range 10 {
		if _, err := echo.Echo(context.Background(), &echov1.EchoRequest{Message: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	var got *balancer.State
	for _, s := range balancer.Snapshot() {
		if s.Target == c.Target {
			got = &s
		}
	}
	if got == nil {
		t.Fatalf("Snapshot: no balancer for %s", c.Target)
	}
	if got.Name != p2c.Name || len(got.Endpoints) != 2 {
		t.Fatalf("got name %q with %d endpoints, want %q with 2", got.Name, len(got.Endpoints), p2c.Name)
	}
	var calls int64
	for _, e := range got.Endpoints {
		calls += e.Calls
		if e.StateName != "READY" || e.Failures != 0 || e.InFlight != 0 {
			t.Errorf("%s: got state=%s failures=%d inFlight=%d, want READY, 0, 0", e.Addr, e.StateName, e.Failures, e.InFlight)
		}
		if want := map[string]uint32{bs[0].Addr: 2, bs[1].Addr: 1}[e.Addr]; e.Weight != want {
			t.Errorf("%s: got weight %d, want %d", e.Addr, e.Weight, want)
		}
		if e.Addr == bs[1].Addr && e.Calls > 0 && e.Latency < 5*time.Millisecond {
			t.Errorf("slow endpoint: got latency %v, want >= 5ms", e.Latency)
		}
	}
	if calls != 10 {
		t.Errorf("calls: got %d, want 10", calls)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("json.Marshal: %v", err)
	}
}
