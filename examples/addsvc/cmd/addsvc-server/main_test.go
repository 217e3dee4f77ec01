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
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"go.uber.org/goleak"
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
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"debug/grpckit/state", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st struct {
		Servers []struct {
			Addresses []string `json:"addresses"`
			Services  []struct {
				Name string `json:"name"`
			} `json:"services"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("admin state: %v\n%s", err, body)
	}
	if len(st.Servers) != 1 || !slices.Contains(st.Servers[0].Addresses, grpcAddr) {
		t.Fatalf("admin state: got servers %+v, want one at %s", st.Servers, grpcAddr)
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
