// Command validateproto writes buf/validate/validate.proto, the protovalidate
// rules schema, as .proto source into a directory, from the descriptor that
// protovalidate's Go module (buf.build/gen/go/bufbuild/protovalidate) embeds.
//
// grpckit's protos import it for their buf.validate annotations, but buf
// cannot fetch it from the schema registry here and third-party .proto
// files are not copied into the repository: CI and developers write it
// into the git-ignored directory .buf-deps, which buf.yaml lists as a
// second module of the workspace, before running buf:
//
//	go -C tools/validateproto run . ../../.buf-deps
//
// The schema's version is the one go.mod pins, so the generated code and
// the validator agree.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/jhump/protoreflect/v2/protoprint"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: validateproto DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "validateproto:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	fd := validate.File_buf_validate_validate_proto
	path := filepath.Join(dir, fd.Path())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	p := protoprint.Printer{}
	if err := p.PrintProtoFile(fd, f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
