// Command addsvc-server serves the add service until it receives SIGINT or
// SIGTERM, then shuts down gracefully.
//
//	go -C examples run ./addsvc/cmd/addsvc-server -addr 127.0.0.1:8081
//	go -C examples run ./addsvc/cmd/addsvc-server -tls-cert cert.pem -tls-key key.pem
//	go -C examples run ./addsvc/cmd/addsvc-server -admin 127.0.0.1:9081
//
// With -admin, the admin page (package admin: live state of the server and
// of every client of the process, /metrics with the add service's business
// metrics addsvc_* beside the gRPC series, /healthz) is served on that
// address, and grpc's channelz on the gRPC port, so that
// `grpcurl -plaintext 127.0.0.1:8081 list` shows grpc.channelz.v1.Channelz.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/examples/addsvc/addservice"
	"github.com/grpckit/grpckit/metrics"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
	"github.com/grpckit/grpckit/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	certFile := flag.String("tls-cert", "", "PEM certificate; with -tls-key, serve TLS")
	keyFile := flag.String("tls-key", "", "PEM private key for -tls-cert")
	drain := flag.Duration("drain", 2*time.Second, "how long to keep serving after health turns NOT_SERVING on shutdown")
	adminAddr := flag.String("admin", "", "serve the admin page on this address (loopback!) and channelz on the gRPC port")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger, *addr, *certFile, *keyFile, *drain, *adminAddr); err != nil {
		logger.Error("addsvc-server failed", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(logger *slog.Logger, addr, certFile, keyFile string, drain time.Duration, adminAddr string) error {
	// Plaintext unless -tls-cert is given (then the TLS option below wins).
	opts := []server.Option{grpckit.WithInsecure(), grpckit.WithLogger(logger), server.WithDrainDelay(drain)}
	if (certFile == "") != (keyFile == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		opts = append(opts, grpckit.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	if adminAddr != "" {
		opts = append(opts, server.WithAdmin(adminAddr), server.WithGRPCAdmin(true))
	}
	srv, err := server.New(opts...)
	if err != nil {
		return err
	}
	if a := srv.AdminAddr(); a != nil {
		logger.Info("admin page", slog.String("url", "http://"+a.String()+"/"))
	}
	// The service's business metrics (addsvc_*) on the server's registry:
	// the admin page's /metrics serves them beside grpc_server_*.
	m, err := addservice.NewMetrics(metrics.Prometheus(srv.Registry()))
	if err != nil {
		_ = srv.Close()
		return err
	}
	addsvcv1.RegisterAddServiceServer(srv, addservice.New(0, addservice.WithMetrics(m)))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	logger.Info("serving", slog.String("addr", lis.Addr().String()), slog.Bool("tls", certFile != ""))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), drain+10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-served
	return nil
}
