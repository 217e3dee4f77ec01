package metrics_test

import (
	"fmt"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/metrics"
)

// Application series on the registry the builders use (here one made as
// they make theirs; with a server, srv.Registry()), so they appear on the
// admin handler's /metrics beside grpckit's and the Go runtime's.
func ExamplePrometheus() {
	reg := grpckit.NewRegistry()
	m := metrics.Prometheus(reg)
	orders, err := m.Counter("shop_orders_total", "Orders placed, by payment.", "payment")
	if err != nil {
		panic(err)
	}
	card := orders.With("card") // bind once, use on the hot path
	card.Inc()
	card.Inc()

	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "shop_orders_total" {
			for _, s := range mf.GetMetric() {
				fmt.Println(mf.GetName(), s.GetLabel()[0].GetValue(), s.GetCounter().GetValue())
			}
		}
	}
	// Output: shop_orders_total card 2
}
