package app_test

import (
	"fmt"
	"os"

	"github.com/grpckit/grpckit/app"
)

func ExampleLoad() {
	env := map[string]string{"GRPCKIT_ADDR": ":9000"}
	cfg, err := app.Load("addsvc", []string{"-drain-delay", "2s"}, func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Addr, cfg.AdminAddr, cfg.DrainDelay, cfg.ShutdownTimeout)
	// Output: :9000 127.0.0.1:9090 2s 30s
}
