package admin_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
)

// stateJSON is the part of /debug/grpckit/state the tests read.
type stateJSON struct {
	Time    time.Time `json:"time"`
	Process struct {
		PID       int    `json:"pid"`
		GoVersion string `json:"goVersion"`
	} `json:"process"`
	Servers []struct {
		ID        int64    `json:"id"`
		Addresses []string `json:"addresses"`
		Status    string   `json:"status"`
	} `json:"servers"`
	Clients []clientJSON `json:"clients"`
}

type clientJSON struct {
	ID       int64  `json:"id"`
	Target   string `json:"target"`
	State    string `json:"state"`
	Balancer string `json:"balancer"`
	Calls    struct {
		InFlight int64 `json:"inFlight"`
		Done     int64 `json:"done"`
		Failed   int64 `json:"failed"`
	} `json:"calls"`
	Breakers []struct {
		Key         string            `json:"key"`
		State       string            `json:"state"`
		Transitions []json.RawMessage `json:"transitions"`
	} `json:"breakers"`
	Endpoints []struct {
		Address string `json:"address"`
		State   string `json:"state"`
		Calls   int64  `json:"calls"`
		Ejected bool   `json:"ejected"`
	} `json:"endpoints"`
	Resolver *struct {
		Scheme   string `json:"scheme"`
		Service  string `json:"service"`
		Answered bool   `json:"answered"`
	} `json:"resolver"`
}

// client returns the client of target, nil if there is none.
func (s *stateJSON) client(target string) *clientJSON {
	for i := range s.Clients {
		if s.Clients[i].Target == target {
			return &s.Clients[i]
		}
	}
	return nil
}

// httpGet GETs url and returns the status and body.
func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func newAdmin(t *testing.T, opts ...admin.Option) *httptest.Server {
	t.Helper()
	h, err := admin.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// waitFor polls cond every 10ms until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// A client-only process: a bare grpc-go backend (no grpckit server), a
// grpckit client. The JSON twin and the page show the client.
func TestClientOnlyProcess(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	new(grpckittest.Backend).Register(gs)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	addr := lis.Addr().String()

	src := &grpckittest.Source{}
	src.Replace(resolver.Endpoint{Addr: addr})
	b, err := resolver.NewBuilder("adminbare", src)
	if err != nil {
		t.Fatal(err)
	}
	const target = "adminbare:///echo"
	conn := grpckittest.Dial(t, target, grpckit.WithAccessLog(false), client.WithDialOptions(grpc.WithResolvers(b)))
	ec := echov1.NewEchoServiceClient(conn)
	const n = 5
	for range n {
		if _, err := ec.Echo(grpckittest.Context(t, 5*time.Second), &echov1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}

	ts := newAdmin(t)
	var st stateJSON
	var c *clientJSON
	defer func() {
		if t.Failed() {
			t.Logf("last state: %+v", st)
		}
	}()
	// The balancer counts a call once it is done: poll.
	waitFor(t, 10*time.Second, "the state to show the client's calls", func() bool {
		code, body := httpGet(t, ts.Client(), ts.URL+"/debug/grpckit/state")
		if code != http.StatusOK {
			t.Fatalf("GET /debug/grpckit/state: %d %s", code, body)
		}
		st = stateJSON{}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("state JSON: %v\n%s", err, body)
		}
		c = st.client(target)
		return c != nil && c.Calls.Done >= n && len(c.Endpoints) == 1 && c.Endpoints[0].Calls >= n
	})
	if c.Endpoints[0].Address != addr || c.Endpoints[0].State != "READY" {
		t.Errorf("endpoints: got %+v, want %s READY", c.Endpoints, addr)
	}
	if c.Balancer == "" || c.State != "READY" || c.Calls.Failed != 0 {
		t.Errorf("client: got balancer %q state %q failed %d, want a balancer, READY, 0 failed", c.Balancer, c.State, c.Calls.Failed)
	}
	if c.Resolver == nil || c.Resolver.Scheme != "adminbare" || c.Resolver.Service != "echo" || !c.Resolver.Answered {
		t.Errorf("client resolver: got %+v, want adminbare echo, answered", c.Resolver)
	}
	if st.Process.PID == 0 || st.Process.GoVersion == "" || st.Time.IsZero() {
		t.Errorf("process: got %+v at %v", st.Process, st.Time)
	}

	// The page is rendered on the server: it shows the client without JS.
	code, page := httpGet(t, ts.Client(), ts.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d", code)
	}
	for _, want := range []string{`data-target="` + target + `"`, `data-endpoint="` + addr + `"`, `data-state="READY"`,
		`data-refresh-ms="2000"`, `src="static/admin.js"`, `href="static/admin.css"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page: no %s in\n%s", want, page)
		}
	}
	// The initial state is JSON, for the script.
	m := regexp.MustCompile(`(?s)<script type="application/json" id="initial-state">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page: no initial-state script in\n%s", page)
	}
	var initial stateJSON
	if err := json.Unmarshal([]byte(m[1]), &initial); err != nil {
		t.Fatalf("initial-state is not JSON: %v\n%s", err, m[1])
	}
	if ic := initial.client(target); ic == nil || len(ic.Endpoints) != 1 || ic.Endpoints[0].Address != addr {
		t.Errorf("initial-state: got %+v, want the client with endpoint %s", ic, addr)
	}

	// ?refresh= overrides the refresh period, within bounds.
	if _, page := httpGet(t, ts.Client(), ts.URL+"/?refresh=500ms"); !strings.Contains(page, `data-refresh-ms="500"`) {
		t.Errorf("?refresh=500ms: page does not say data-refresh-ms=\"500\"")
	}
	if _, page := httpGet(t, ts.Client(), ts.URL+"/?refresh=1ms"); !strings.Contains(page, `data-refresh-ms="2000"`) {
		t.Errorf("?refresh=1ms: page does not keep data-refresh-ms=\"2000\"")
	}
}

// /metrics merges the default registries of a server and a client.
func TestMetricsMerge(t *testing.T) {
	quiet := grpckit.WithAccessLog(false)
	srv := grpckittest.NewServer(t, new(grpckittest.Backend).Register, quiet)
	conn := srv.Dial(t, quiet)
	if _, err := echov1.NewEchoServiceClient(conn).Echo(grpckittest.Context(t, 5*time.Second), &echov1.EchoRequest{Message: "m"}); err != nil {
		t.Fatal(err)
	}
	ts := newAdmin(t)
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, prefix := range []string{"go_", "process_", "grpc_client_", "grpc_server_"} {
		found := false
		for name := range fams {
			if strings.HasPrefix(name, prefix) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("/metrics: no family with prefix %s", prefix)
		}
	}
	for name, mf := range fams {
		if mf.GetHelp() == "" {
			t.Errorf("/metrics: family %s has no HELP", name)
		}
		if len(mf.Metric) == 0 {
			t.Errorf("/metrics: family %s has no series", name)
		}
	}
	// Each family is announced once (a family gathered from both
	// registries is merged into one).
	types := map[string]int{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && (f[1] == "TYPE" || f[1] == "HELP") {
			types[f[1]+" "+f[2]]++
		}
	}
	for k, n := range types {
		if n != 1 {
			t.Errorf("/metrics: %q appears %d times", k, n)
		}
	}
	if types["TYPE go_goroutines"] != 1 {
		t.Errorf("/metrics: no TYPE line for go_goroutines")
	}
}

// pprof is off by default; on with WithPprof; the command line never.
func TestPprof(t *testing.T) {
	off := newAdmin(t)
	on := newAdmin(t, admin.WithPprof())
	for _, tc := range []struct {
		ts   *httptest.Server
		path string
		want int
	}{
		{off, "/debug/pprof/", http.StatusNotFound},
		{off, "/debug/pprof/cmdline", http.StatusNotFound},
		{off, "/debug/pprof/goroutine", http.StatusNotFound},
		{on, "/debug/pprof/", http.StatusOK},
		{on, "/debug/pprof/goroutine?debug=1", http.StatusOK},
		{on, "/debug/pprof/cmdline", http.StatusNotFound},
	} {
		if code, _ := httpGet(t, tc.ts.Client(), tc.ts.URL+tc.path); code != tc.want {
			t.Errorf("pprof %v, GET %s: got %d, want %d", tc.ts == on, tc.path, code, tc.want)
		}
	}
	_, page := httpGet(t, on.Client(), on.URL+"/")
	if !strings.Contains(page, `href="debug/pprof/"`) {
		t.Errorf("page with pprof: no link to debug/pprof/")
	}
	_, page = httpGet(t, off.Client(), off.URL+"/")
	if strings.Contains(page, `debug/pprof`) {
		t.Errorf("page without pprof: links to debug/pprof")
	}
}

// The page loads nothing from elsewhere: no absolute URL in the page, its
// script or its style sheet (the SVG namespace is a name, not a URL the
// browser fetches), and a CSP that allows only the page's own origin.
func TestPageIsSelfContained(t *testing.T) {
	ts := newAdmin(t)
	resp, err := ts.Client().Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP: got %q", csp)
	}
	for _, tc := range []struct{ path, ctype string }{
		{"/", "text/html"},
		{"/static/admin.js", "javascript"},
		{"/static/admin.css", "text/css"},
	} {
		resp, err := ts.Client().Get(ts.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: got %d %q, want 200 %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.ctype)
		}
		s := strings.ReplaceAll(string(b), "'http://www.w3.org/2000/svg'", "")
		for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML", " style=\"", "<script>"} {
			if strings.Contains(s, bad) {
				t.Errorf("GET %s: contains %q", tc.path, bad)
			}
		}
	}
}
