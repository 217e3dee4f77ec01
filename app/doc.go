// Package app runs a service: [Load] reads its [Config] from flags and the
// environment (the defaults table is on Config), and [Run] serves its
// grpckit servers, HTTP handlers (package gateway) and the admin endpoint
// (package admin) until SIGINT or SIGTERM, then shuts down gracefully:
// servers deregister, turn NOT_SERVING, drain, and stop once their calls
// are done, within the shutdown timeout. A rolling restart of a service
// run this way costs zero calls.
//
//	func main() {
//		cfg, err := app.Load("addsvc", os.Args[1:], nil, os.Stderr)
//		if err != nil {
//			os.Exit(2)
//		}
//		logger := cfg.Logger(os.Stderr)
//		srv, err := server.New(grpckit.WithTLS(tlsConfig), grpckit.WithLogger(logger),
//			server.WithDrainDelay(cfg.DrainDelay))
//		if err != nil {
//			logger.Error("server", "error", err)
//			os.Exit(1)
//		}
//		addsvcv1.RegisterAddServiceServer(srv, addservice.New(0))
//		if err := app.Run(context.Background(), cfg, app.WithServer(srv, ""), app.WithLogger(logger)); err != nil {
//			logger.Error("run", "error", err)
//			os.Exit(1)
//		}
//	}
package app
