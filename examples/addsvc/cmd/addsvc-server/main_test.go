package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"go.uber.org/goleak"

	addsvcv1 "github.com/grpckit/grpckit/proto/grpckit/addsvc/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestAdminFlag runs the server as its own process with -admin, finds the
// admin page and channelz (what `grpcurl -plaintext ADDR list` lists), and
// stops it with SIGTERM.
func TestAdminFlag(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "addsvc-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-drain", "0s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines { //nolint:revive // drain
		}
		<-exited
	})

	// The server logs its addresses (text slog lines) before it serves.
	var grpcAddr, adminURL string
	urlRE, addrRE := regexp.MustCompile(`msg="admin page" url=(\S+)`), regexp.MustCompile(`msg=serving addr=(\S+)`)
	for grpcAddr == "" {
		line, ok := <-lines
		if !ok {
			t.Fatal("server exited before serving")
		}
		if m := urlRE.FindStringSubmatch(line); m != nil {
			adminURL = m[1]
		}
		if m := addrRE.FindStringSubmatch(line); m != nil {
			grpcAddr = m[1]
		}
	}
	if adminURL == "" {
		t.Fatal("no admin page URL logged")
	}
	go func() { // keep reading so the server never blocks on stderr
		for range lines { //nolint:revive // drain
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The server logs its address just before it serves: poll until the
	// state lists it.
	var st struct {
		Servers []struct {
			Addresses []string `json:"addresses"`
			Services  []struct {
				Name string `json:"name"`
			} `json:"services"`
		} `json:"servers"`
	}
	for {
		st.Servers = nil
		body := httpGet(ctx, t, adminURL+"debug/grpckit/state")
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("admin state: %v\n%s", err, body)
		}
		if len(st.Servers) == 1 && slices.Contains(st.Servers[0].Addresses, grpcAddr) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("admin state: got servers %+v, want one at %s", st.Servers, grpcAddr)
		case <-time.After(10 * time.Millisecond):
		}
	}

	// What grpcurl list does: ask server reflection for the services.
	conn, err := grpc.NewClient("passthrough:///"+grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	var names []string
	for _, s := range rr.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"grpc.channelz.v1.Channelz", "grpckit.addsvc.v1.AddService"} {
		if !slices.Contains(names, want) {
			t.Errorf("services listed: got %v, want %s among them", names, want)
		}
	}

	// The add service's business metrics are on the admin page's /metrics:
	// after a sum and a refused concatenation, each counts one.
	add := addsvcv1.NewAddServiceClient(conn)
	if _, err := add.Sum(ctx, &addsvcv1.SumRequest{A: 1, B: 2}); err != nil {
		t.Fatalf("Sum: %v", err)
	}
	if _, err := add.Concat(ctx, &addsvcv1.ConcatRequest{A: strings.Repeat("a", 2000)}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Concat of 2000 bytes: got %v, want InvalidArgument", err)
	}
	body := httpGet(ctx, t, adminURL+"metrics")
	for _, want := range []string{
		"\naddsvc_sums_total 1\n",
		"\naddsvc_refused_total{op=\"concat\",reason=\"too_long\"} 1\n",
		"\naddsvc_refused_total{op=\"sum\",reason=\"overflow\"} 0\n",
		"\naddsvc_concat_length_bytes_count 0\n",
		"\ngrpc_server_handled_total{",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics: no %q in\n%s", strings.TrimSpace(want), body)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("after SIGTERM: %v, want exit status 0", err)
		}
		exited <- nil // for the cleanup
	case <-ctx.Done():
		t.Fatal("server did not exit after SIGTERM")
	}
}

// httpGet returns the body of a GET of url.
func httpGet(ctx context.Context, t *testing.T, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v\n%s", url, resp.StatusCode, err, body)
	}
	return body
}
