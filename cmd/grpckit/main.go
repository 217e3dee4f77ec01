// Command grpckit starts a grpckit service:
//
//	go install github.com/grpckit/grpckit/cmd/grpckit@latest
//	grpckit new example.com/greeter greeter
//
// writes, in ./greeter: a protobuf API with buf.yaml and buf.gen.yaml (local
// plugins only, no schema registry), the Go code generated from it, a
// server on package app (flags and environment, graceful shutdown, admin
// page), a client, tests on the grpckit test kit, a Dockerfile building a
// static binary into a distroless image, Kubernetes manifests (a
// Deployment with readiness on gRPC health, a headless Service, a client
// finding the servers through DNS SRV), and a README with two commands: run
// it, test it. It needs no network once the Go modules are in the module
// cache; it generates the code by running protoc-gen-go and
// protoc-gen-go-grpc (from PATH, or `go run` at the pinned versions).
//
// Flags of `grpckit new`:
//
//	-dir path          where to write (default: the service name)
//	-grpckit path      use this grpckit checkout (a replace directive)
//	-no-tidy           do not run go mod tidy
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "grpckit:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: grpckit new [-dir path] [-grpckit path] [-no-tidy] <module> <service>

  module   the new project's Go module path (example.com/greeter)
  service  the service's name: lower case letters and digits (greeter)
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprint(stderr, usage)
		return errors.New("want a command: new")
	}
	fs := flag.NewFlagSet("grpckit new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	dir := fs.String("dir", "", "where to write the project (default: the service name)")
	replace := fs.String("grpckit", "", "path of a grpckit checkout to use instead of the released module")
	noTidy := fs.Bool("no-tidy", false, "do not run go mod tidy in the new project")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("want <module> <service>")
	}
	p, err := newProject(fs.Arg(0), fs.Arg(1))
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = p.Name
	}
	p.Replace = *replace
	if err := p.write(*dir); err != nil {
		return err
	}
	if !*noTidy {
		if err := goModTidy(*dir); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %s in %s\n\n  cd %s\n  go run ./cmd/%s-server   # serves on :8080, admin page on 127.0.0.1:9090\n  go test ./...\n",
		p.Module, *dir, *dir, p.Name)
	return nil
}
