// Command addsvc-client calls an add-service server once and prints the
// result.
//
//	go -C examples run ./addsvc/cmd/addsvc-client -addr 127.0.0.1:8081 sum 2 3
//	go -C examples run ./addsvc/cmd/addsvc-client -tls -tls-ca cert.pem concat grpc kit
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/client"
	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "server address (host:port) or a gRPC target URI")
	useTLS := flag.Bool("tls", false, "connect over TLS")
	caFile := flag.String("tls-ca", "", "PEM CA certificate to trust (default: the system roots)")
	timeout := flag.Duration("timeout", 5*time.Second, "call deadline")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: addsvc-client [flags] sum A B | concat A B")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*addr, *useTLS, *caFile, *timeout, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "addsvc-client:", err)
		os.Exit(1)
	}
}

func run(addr string, useTLS bool, caFile string, timeout time.Duration, args []string) error {
	if len(args) != 3 {
		return errors.New("want: sum A B | concat A B")
	}
	creds := grpckit.WithInsecure()
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("%s holds no PEM certificate", caFile)
			}
		}
		creds = grpckit.WithTLS(cfg)
	}
	conn, err := client.New(addr, creds, client.WithDefaultTimeout(timeout))
	if err != nil {
		return err
	}
	defer conn.Close()
	add := addsvcv1.NewAddServiceClient(conn)
	ctx := context.Background()

	switch args[0] {
	case "sum":
		a, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return err
		}
		b, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return err
		}
		res, err := add.Sum(ctx, &addsvcv1.SumRequest{A: a, B: b})
		if err != nil {
			return err
		}
		fmt.Println(res.GetV())
	case "concat":
		res, err := add.Concat(ctx, &addsvcv1.ConcatRequest{A: args[1], B: args[2]})
		if err != nil {
			return err
		}
		fmt.Println(res.GetV())
	default:
		return fmt.Errorf("unknown method %q, want sum or concat", args[0])
	}
	return nil
}
