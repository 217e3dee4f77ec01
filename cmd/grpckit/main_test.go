package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// root is this grpckit checkout.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sh(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestNew scaffolds a project against this checkout and checks what a
// user would: buf regenerates the same code, it builds, vets and passes
// its tests, the Dockerfile's build makes a static binary, the server
// answers health checks and calls and stops on SIGTERM, and the manifests
// are valid Kubernetes objects wired together.
func TestNew(t *testing.T) {
	// Offline: everything must come from the module cache (kratos #1642:
	// `kratos new` fails without GitHub).
	t.Setenv("GOPROXY", "off")
	dir := filepath.Join(t.TempDir(), "greeter")
	var out bytes.Buffer
	if err := run([]string{"new", "-dir", dir, "-grpckit", root(t), "example.com/greeter", "greeter"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "go run ./cmd/greeter-server") {
		t.Errorf("output: got %q, want the two commands", out.String())
	}

	t.Run("buf", func(t *testing.T) {
		if _, err := exec.LookPath("buf"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("buf not found: CI installs it")
			}
			t.Skip("buf not installed")
		}
		gen := filepath.Join(dir, "gen", "greeter", "v1")
		before := map[string][]byte{}
		for _, f := range []string{"greeter.pb.go", "greeter_grpc.pb.go"} {
			b, err := os.ReadFile(filepath.Join(gen, f))
			if err != nil {
				t.Fatal(err)
			}
			before[f] = b
		}
		sh(t, dir, "buf", "lint")
		sh(t, dir, "buf", "format", "-d", "--exit-code")
		sh(t, dir, "buf", "generate")
		for f, b := range before {
			after, err := os.ReadFile(filepath.Join(gen, f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, b) {
				t.Errorf("buf generate changed %s: grpckit new's generated code differs from buf's", f)
			}
		}
	})

	sh(t, dir, "go", "build", "./...")
	sh(t, dir, "go", "vet", "./...")
	if gofmt := sh(t, dir, "gofmt", "-l", "."); gofmt != "" {
		t.Errorf("gofmt -l: %s", gofmt)
	}
	if testOut := sh(t, dir, "go", "test", "-count=1", "./..."); !strings.Contains(testOut, "ok  \texample.com/greeter/internal/greeter") {
		t.Errorf("go test: %s", testOut)
	}

	// The Dockerfile's build commands, run here: static binaries.
	bin := t.TempDir()
	df, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	builds := regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 go build (.*) -o /out/(\w+) (\S+)$`).FindAllStringSubmatch(string(df), -1)
	if len(builds) != 2 {
		t.Fatalf("Dockerfile: got %d static builds, want the server's and the client's:\n%s", len(builds), df)
	}
	for _, b := range builds {
		args := append([]string{"build"}, shellFields(b[1])...)
		args = append(args, "-o", filepath.Join(bin, b[2]), b[3])
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		checkStatic(t, filepath.Join(bin, b[2]))
	}

	t.Run("server", func(t *testing.T) { serverAnswers(t, bin) })
	t.Run("manifests", func(t *testing.T) { checkManifests(t, dir) })
}

// shellFields splits s at spaces outside double quotes, dropping the
// quotes, as the shell does for the Dockerfile's RUN lines.
func shellFields(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, started := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, started = !quoted, true
		case r == ' ' && !quoted:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

// checkStatic fails unless the ELF file needs no dynamic loader and no
// shared library (what ldd reports as "not a dynamic executable").
func checkStatic(t *testing.T, name string) {
	t.Helper()
	f, err := elf.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: has a %v program header: not static", filepath.Base(name), p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: needs %v: not static", filepath.Base(name), libs)
	}
	if ldd, err := exec.LookPath("ldd"); err == nil {
		out, _ := exec.Command(ldd, name).CombinedOutput()
		t.Logf("ldd %s: %s", filepath.Base(name), strings.TrimSpace(string(out)))
	}
}

func serverAnswers(t *testing.T, bin string) {
	srv := exec.Command(filepath.Join(bin, "server"), "-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-admin-addr", "127.0.0.1:0", "-drain-delay", "0s")
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr, httpAddr := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg  string   `json:"msg"`
				GRPC []string `json:"grpc"`
				HTTP []string `json:"http"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" && len(line.GRPC) == 1 && len(line.HTTP) == 1 {
				addr <- line.GRPC[0]
				httpAddr <- line.HTTP[0]
			}
		}
		exited <- srv.Wait()
	}()
	defer func() {
		_ = srv.Process.Kill()
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-exited:
		t.Fatalf("server exited: %v", err)
	}

	conn, err := grpc.NewClient("passthrough:///"+a, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	conn.Close()
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check: got %v, %v, want SERVING", resp, err)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "client"), "-target", "passthrough:///"+a, "-name", "test").Output()
	if err != nil || strings.TrimSpace(string(out)) != "Hello, test" {
		t.Fatalf("client: got %q, %v, want \"Hello, test\"", out, err)
	}

	// The same call as HTTP/JSON, as curl sends it, through the gateway.
	hreq, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+<-httpAddr+"/greeter.v1.GreeterService/SayHello",
		strings.NewReader(`{"name":"curl"}`))
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"message":"Hello, curl"}` {
		t.Errorf("HTTP/JSON call: got %s %s, want 200 {\"message\":\"Hello, curl\"}", hresp.Status, body)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("server after SIGTERM: %v, want exit 0", err)
		}
	case <-ctx.Done():
		t.Fatal("server did not stop after SIGTERM")
	}
}

// checkManifests decodes every manifest strictly into the Kubernetes API
// types (unknown fields fail) and checks how they fit together.
func checkManifests(t *testing.T, dir string) {
	var deps []appsv1.Deployment
	var svcs []corev1.Service
	for _, f := range []string{"server.yaml", "client.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, "deploy", "kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---\n") {
			var meta struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			switch meta.Kind {
			case "Deployment":
				var d appsv1.Deployment
				if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
					t.Fatalf("%s #%d: %v", f, i, err)
				}
				deps = append(deps, d)
			case "Service":
				var s corev1.Service
				if err := yaml.UnmarshalStrict([]byte(doc), &s); err != nil {
					t.Fatalf("%s #%d: %v", f, i, err)
				}
				svcs = append(svcs, s)
			default:
				t.Fatalf("%s #%d: unexpected kind %q", f, i, meta.Kind)
			}
		}
	}
	if len(deps) != 2 || len(svcs) != 1 {
		t.Fatalf("manifests: got %d Deployments and %d Services, want 2 and 1", len(deps), len(svcs))
	}
	server, client, svc := deps[0], deps[1], svcs[0]
	for _, d := range deps {
		if errs := validation.IsDNS1123Label(d.Name); len(errs) > 0 {
			t.Errorf("Deployment name %q: %v", d.Name, errs)
		}
		if d.Spec.Selector == nil || d.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != d.Spec.Template.Labels["app.kubernetes.io/name"] {
			t.Errorf("Deployment %s: its selector does not select its pods", d.Name)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("Deployment %s: want a read-only root file system", d.Name)
		}
	}
	c := server.Spec.Template.Spec.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.GRPC == nil || p.GRPC.Port != 8080 {
		t.Errorf("server readiness probe: got %+v, want gRPC health on 8080", c.ReadinessProbe)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "grpc" ||
		svc.Spec.Ports[0].TargetPort.String() != c.Ports[0].Name || svc.Spec.Selector["app.kubernetes.io/name"] != server.Name {
		t.Errorf("Service: got %+v, want headless, one port named grpc to the server's port, selecting the server", svc.Spec)
	}
	var shutdown, drain time.Duration
	for _, e := range c.Env {
		d, _ := time.ParseDuration(e.Value)
		switch e.Name {
		case "GRPCKIT_SHUTDOWN_TIMEOUT":
			shutdown = d
		case "GRPCKIT_DRAIN_DELAY":
			drain = d
		}
	}
	if grace := time.Duration(*server.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= shutdown || drain >= shutdown {
		t.Errorf("server timing: grace %v, shutdown %v, drain %v: want drain < shutdown < grace", grace, shutdown, drain)
	}
	target := "dnssrv:///_" + svc.Spec.Ports[0].Name + "._tcp." + svc.Name + ".default.svc.cluster.local"
	if args := strings.Join(client.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, target) {
		t.Errorf("client args %q: want the target %s", args, target)
	}
}

func TestNewErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"init"},
		{"new", "example.com/x"},
		{"new", "example.com/x", "Bad-Name"},
		{"new", "not a module", "svc"},
		{"new", "example.com/x", "svc", "extra"},
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("grpckit %q: got nil, want an error", args)
		}
	}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"new", "-dir", full, "-no-tidy", "example.com/x", "svc"}, io.Discard, io.Discard); err == nil {
		t.Error("grpckit new into a non-empty directory: got nil, want an error")
	}
}
