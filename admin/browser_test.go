package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/admin"
	"github.com/grpckit/grpckit/client"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/breaker"
	"github.com/grpckit/grpckit/interceptors/hedge"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/resolver"
)

// findBrowser returns the path of a Chromium or Chrome, "" if there is none.
func findBrowser() string {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The page, in a real browser, mounted under a prefix: it shows the
// client's endpoints, follows its breaker open and closed again, and
// refreshes itself.
func TestPageInBrowser(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium found: CI must install it (apt-get install chromium)")
		}
		t.Skip("BROWSER TEST SKIPPED: no chromium found; apt-get install chromium")
	}

	// Two backends, found through a source; a client with a breaker that
	// opens quickly and probes soon.
	quiet := grpckit.WithAccessLog(false)
	// A call with the message "xss" fails with markup in its message: the
	// page must show it as text.
	const xss = `<img id="xss" src="x">`
	xssHandler := func(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		if req.GetMessage() == "xss" {
			return nil, status.Error(codes.InvalidArgument, xss)
		}
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}
	b1 := &grpckittest.Backend{Handler: xssHandler}
	b2 := &grpckittest.Backend{Handler: xssHandler}
	s1 := grpckittest.NewServer(t, b1.Register, quiet)
	s2 := grpckittest.NewServer(t, b2.Register, quiet)
	src := &grpckittest.Source{}
	src.Replace(resolver.Endpoint{Addr: s1.Addr}, resolver.Endpoint{Addr: s2.Addr})
	rb, err := resolver.NewBuilder("browsertest", src)
	if err != nil {
		t.Fatal(err)
	}
	const target = "browsertest:///echo"
	const method = "/grpckit.echo.v1.EchoService/Echo"
	conn := grpckittest.Dial(t, target, quiet, client.WithDialOptions(grpc.WithResolvers(rb)),
		client.WithBreaker(breaker.WithThreshold(3), breaker.WithTimeout(500*time.Millisecond)),
		client.WithHedging(hedge.WithMethods(method), hedge.WithDelay(50*time.Millisecond)))
	ec := echov1.NewEchoServiceClient(conn)

	// A steady trickle of calls for the whole test, as a live service has:
	// the breaker moves only when calls come.
	calls, stopCalls := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(calls, 2*time.Second)
			_, _ = ec.Echo(ctx, &echov1.EchoRequest{Message: "browser"})
			cancel()
			select {
			case <-calls.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { stopCalls(); wg.Wait() }()

	h, err := admin.New(admin.WithRefresh(200 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool // the state fails: the page is disconnected
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() && r.URL.Path == "/debug/grpckit/state" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	// The browser: headless, fresh profile, at most two minutes.
	profile := filepath.Join(t.TempDir(), "profile")
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	timeout, cancelTimeout := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelTimeout()
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout, opts...)
	defer cancelAlloc() // waits for the browser process to exit
	ctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()

	page := ts.URL + "/ops/"
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("navigate to %s: %v", page, err)
	}
	dump := func() {
		html, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.outerHTML"))
		t.Logf("page body (err %v):\n%s", err, html)
		t.Logf("state: %+v", h.State())
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second))); err != nil {
			dump()
			t.Fatalf("page: waiting for %s: %v", what, err)
		}
	}
	card := `(document.querySelector('[data-client-id][data-target=' + ` + js(js(target)) + ` + ']') || document.createElement('div'))`

	// The card of the client shows both endpoints as rows.
	poll("both endpoints", fmt.Sprintf(`(() => {
		const c = %s;
		return !!c.querySelector('tr[data-endpoint=' + %s + ']') &&
			!!c.querySelector('tr[data-endpoint=' + %s + ']') &&
			c.querySelectorAll('tr[data-endpoint][data-state="READY"]').length === 2 &&
			document.getElementById('status').textContent === 'live';
	})()`, card, js(js(s1.Addr)), js(js(s2.Addr))))

	// It refreshes itself.
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.getElementById('updated').getAttribute('data-updates'))`))
	if err != nil {
		t.Fatal(err)
	}
	poll("two more refreshes", fmt.Sprintf(
		`Number(document.getElementById('updated').getAttribute('data-updates')) >= %d`, n+2))

	// A call hangs on s1: the client hedges it to s2, and the page shows
	// the hedge sent and won.
	b1.Faults.Next(1, grpckittest.Fault{Delay: 10 * time.Second})
	poll("a hedge sent and won", fmt.Sprintf(`(() => {
		const r = %s.querySelector('table.hedging tr[data-hedge-method=' + %s + ']');
		return !!r && Number(r.getAttribute('data-sent')) >= 1 && Number(r.getAttribute('data-won')) >= 1 &&
			%s.textContent.includes('hedges sent');
	})()`, card, js(js(method)), card))

	// Both backends fail: the breaker of the method opens.
	breakerRow := `(() => { const c = ` + card + `; return c.querySelector('tr[data-breaker-key=' + ` + js(js(method)) + ` + ']'); })()`
	b1.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	b2.Faults.Always(grpckittest.Fault{Code: codes.Unavailable})
	poll("the breaker open", `(() => { const r = `+breakerRow+`; return !!r && r.getAttribute('data-breaker-state') === 'open'; })()`)

	// They heal: the breaker closes again, and its timeline shows its history.
	b1.Faults.Reset()
	b2.Faults.Reset()
	poll("the breaker closed, with its transitions", `(() => {
		const r = `+breakerRow+`;
		return !!r && r.getAttribute('data-breaker-state') === 'closed' &&
			Number(r.getAttribute('data-transitions')) >= 2 &&
			r.querySelectorAll('svg.timeline rect').length >= 2 &&
			!!r.querySelector('svg.timeline rect[data-state="open"]');
	})()`)
	// Both endpoints are back in the picture.
	poll("both endpoints ready again", card+`.querySelectorAll('tr[data-endpoint][data-state="READY"]').length === 2`)

	// Values from the network are text, never markup.
	if _, err := ec.Echo(grpckittest.Context(t, 5*time.Second), &echov1.EchoRequest{Message: "xss"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("xss call: got %v, want InvalidArgument", err)
	}
	poll("the markup in an error message shown as text", fmt.Sprintf(
		`document.getElementById('xss') === null && %s.textContent.includes(%s)`, card, js(xss)))

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), "admin.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	if dir := os.Getenv("GRPCKIT_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "admin.png")
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	// The state cannot be fetched: the page says so and keeps the last data.
	down.Store(true)
	poll("disconnected, with the last data", `document.getElementById('status').textContent === 'disconnected' && `+card+`.querySelectorAll('tr[data-endpoint]').length === 2`)
	down.Store(false)
	poll("live again", `document.getElementById('status').textContent === 'live'`)

	// The browser, its tab and its process end here, before goleak looks.
	cancelCtx()
	cancelAlloc()
}
