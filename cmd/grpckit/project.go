package main

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"text/template"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// Versions the project is generated with: the Go version, and the plugins
// run when they are not on PATH (the same as grpckit's own CI).
const (
	goVersion            = "1.26.7"
	protocGenGo          = "google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
	protocGenGoGRPC      = "google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2"
	grpckitModule        = "github.com/grpckit/grpckit"
	develVersion         = "v0.0.0-00010101000000-000000000000"
	defaultGRPCKitModVer = develVersion
)

// project is what the templates see.
type project struct {
	Module    string // example.com/greeter
	Name      string // greeter
	Title     string // Greeter
	Package   string // greeter.v1
	GoPackage string // greeterv1
	ProtoDir  string // greeter/v1
	ProtoFile string // greeter/v1/greeter.proto
	Service   string // GreeterService
	Method    string // SayHello
	Replace   string // a grpckit checkout, or ""
	Version   string // grpckit's version
	GoVersion string
}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9]{0,29}$`)
	moduleRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~/-]*[A-Za-z0-9]$`)
)

func newProject(module, name string) (*project, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("service name %q: want lower case letters and digits, starting with a letter, at most 30", name)
	}
	if !moduleRE.MatchString(module) || strings.Contains(module, "//") || strings.Contains(module, "..") {
		return nil, fmt.Errorf("module path %q is not a valid Go module path", module)
	}
	title := strings.ToUpper(name[:1]) + name[1:]
	p := &project{Module: module, Name: name, Title: title, Package: name + ".v1", GoPackage: name + "v1",
		ProtoDir: name + "/v1", ProtoFile: name + "/v1/" + name + ".proto", Service: title + "Service",
		Method: "SayHello", Version: defaultGRPCKitModVer, GoVersion: goVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == grpckitModule && d.Version != "" && d.Version != "(devel)" {
				p.Version = d.Version
			}
		}
	}
	return p, nil
}

//go:embed all:templates
var templates embed.FS

// write writes the project into dir, which must not exist or be empty.
func (p *project) write(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	if p.Replace != "" {
		abs, err := filepath.Abs(p.Replace)
		if err != nil {
			return err
		}
		p.Replace = abs
	}
	err := fs.WalkDir(templates, "templates", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".tmpl")
		rel = strings.NewReplacer("_name_", p.Name, "_dot_", ".").Replace(rel)
		src, err := templates.ReadFile(name)
		if err != nil {
			return err
		}
		t, err := template.New(name).Delims("[[", "]]").Parse(string(src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, p); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return writeFile(filepath.Join(dir, rel), b.Bytes())
	})
	if err != nil {
		return err
	}
	return p.generate(dir)
}

func writeFile(name string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, b, 0o644)
}

// descriptor is the proto file the templates write, as protoc would hand
// it to a plugin.
func (p *project) descriptor() *descriptorpb.FileDescriptorProto {
	s := proto.String
	field := func(name string) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: s(name), Number: proto.Int32(1), JsonName: s(name),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()}
	}
	return &descriptorpb.FileDescriptorProto{
		Name: s(p.ProtoFile), Package: s(p.Package), Syntax: s("proto3"),
		Options: &descriptorpb.FileOptions{GoPackage: s(p.Module + "/gen/" + p.ProtoDir + ";" + p.GoPackage)},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: s(p.Method + "Request"), Field: []*descriptorpb.FieldDescriptorProto{field("name")}},
			{Name: s(p.Method + "Response"), Field: []*descriptorpb.FieldDescriptorProto{field("message")}},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: s(p.Service), Method: []*descriptorpb.MethodDescriptorProto{{
			Name: s(p.Method), InputType: s("." + p.Package + "." + p.Method + "Request"), OutputType: s("." + p.Package + "." + p.Method + "Response"),
		}}}},
	}
}

// generate runs protoc-gen-go and protoc-gen-go-grpc on the proto file, as
// buf generate with the project's buf.gen.yaml does, and writes their
// output under gen/.
func (p *project) generate(dir string) error {
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: []string{p.ProtoFile}, Parameter: proto.String("paths=source_relative"),
		ProtoFile: []*descriptorpb.FileDescriptorProto{p.descriptor()}}
	in, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	for _, plugin := range []struct{ bin, pkg string }{{"protoc-gen-go", protocGenGo}, {"protoc-gen-go-grpc", protocGenGoGRPC}} {
		var cmd *exec.Cmd
		if bin, err := exec.LookPath(plugin.bin); err == nil {
			cmd = exec.Command(bin)
		} else {
			cmd = exec.Command("go", "run", plugin.pkg)
			cmd.Dir = dir
		}
		var out, stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w\n%s", plugin.bin, err, stderr.String())
		}
		var resp pluginpb.CodeGeneratorResponse
		if err := proto.Unmarshal(out.Bytes(), &resp); err != nil {
			return fmt.Errorf("%s: %w", plugin.bin, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("%s: %s", plugin.bin, resp.GetError())
		}
		for _, f := range resp.File {
			name := path.Clean(f.GetName())
			if path.IsAbs(name) || strings.HasPrefix(name, "..") {
				return fmt.Errorf("%s: file %q outside the output", plugin.bin, name)
			}
			if err := writeFile(filepath.Join(dir, "gen", filepath.FromSlash(name)), []byte(f.GetContent())); err != nil {
				return err
			}
		}
	}
	return nil
}

// goModTidy resolves the project's dependencies from the module cache
// when they are there. Offline, tidy cannot look up the modules that only
// the tests of dependencies import (-e leaves them out; building and
// testing the project does not need them); go list then checks that the
// project's own packages resolve.
func goModTidy(dir string) error {
	for _, args := range [][]string{{"mod", "tidy", "-e"}, {"list", "-deps", "-test", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}
