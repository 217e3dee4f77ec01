package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/gateway"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/interceptors/auth"
	"github.com/grpckit/grpckit/internal/logbuf"
	"github.com/grpckit/grpckit/internal/wait"
	echov1 "github.com/grpckit/grpckit/proto/grpckit/echo/v1"
	"github.com/grpckit/grpckit/server"
)

const echoPath = "/grpckit.echo.v1.EchoService/Echo"

// env is a grpckit server (serving gRPC on its own port) with the gateway
// mounted on an HTTP server that speaks HTTP/1.1 and, for gRPC clients,
// unencrypted HTTP/2.
type env struct {
	srv  *grpckittest.Server
	hs   *httptest.Server
	url  string
	hc   *http.Client // HTTP/1.1
	h2c  *http.Client // HTTP/2 without TLS (prior knowledge)
	logs *logbuf.Buffer
}

func start(t *testing.T, b *grpckittest.Backend, gwOpts []gateway.Option, opts ...server.Option) *env {
	t.Helper()
	e := &env{logs: new(logbuf.Buffer)}
	opts = append([]server.Option{grpckit.WithLogger(slog.New(slog.NewJSONHandler(e.logs, nil)))}, opts...)
	e.srv = grpckittest.NewServer(t, b.Register, opts...)
	gw, err := gateway.New(e.srv.Server, gwOpts...)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ts := httptest.NewUnstartedServer(gw)
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetHTTP1(true)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)
	e.hs, e.url, e.hc = ts, ts.URL, ts.Client()
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	e.h2c = &http.Client{Transport: tr}
	return e
}

// post sends body to path as curl -H 'Content-Type: application/json'
// -d body would, with the given extra headers, and returns the status and
// the response body.
func (e *env) post(t *testing.T, path, body string, header ...string) (int, string, http.Header) {
	t.Helper()
	return e.do(t, http.MethodPost, path, body, header...)
}

func (e *env) do(t *testing.T, method, path, body string, header ...string) (int, string, http.Header) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(grpckittest.Context(t, 10*time.Second), method, e.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// connectError is the JSON body of a Connect error.
type connectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type string `json:"type"`
	} `json:"details"`
}

func decodeError(t *testing.T, body string) connectError {
	t.Helper()
	var ce connectError
	if err := json.Unmarshal([]byte(body), &ce); err != nil {
		t.Fatalf("error body %q: not JSON: %v", body, err)
	}
	return ce
}

func echoClient(e *env, opts ...connect.ClientOption) *connect.Client[echov1.EchoRequest, echov1.EchoResponse] {
	return connect.NewClient[echov1.EchoRequest, echov1.EchoResponse](e.hc, e.url+echoPath, opts...)
}

// accessLines returns the access-log lines of method.
func (e *env) accessLines(t *testing.T, method string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range e.logs.JSONLines(t) {
		if l["grpc.method"] == method && l["grpc.component"] == "server" {
			out = append(out, l)
		}
	}
	return out
}

// A curl-style JSON POST reaches the handler through the server's chain:
// the access log has the call's line, with the HTTP client as its peer.
func TestCurlJSON(t *testing.T) {
	e := start(t, new(grpckittest.Backend), nil)
	code, body, h := e.post(t, echoPath, `{"message":"hi"}`)
	if code != http.StatusOK || body != `{"message":"hi"}` {
		t.Fatalf("POST %s: got %d %s, want 200 {\"message\":\"hi\"}", echoPath, code, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	lines := e.accessLines(t, "Echo")
	if len(lines) != 1 {
		t.Fatalf("access log: got %d lines for Echo, want 1:\n%s", len(lines), e.logs)
	}
	if l := lines[0]; l["grpc.code"] != "OK" || !strings.HasPrefix(l["peer.address"].(string), "127.0.0.1:") {
		t.Errorf("access log line: got %v, want grpc.code OK from 127.0.0.1", l)
	}
	// Connect's GET form of unary calls serves only methods marked
	// idempotency_level = NO_SIDE_EFFECTS, which Echo is not.
	code, _, _ = e.do(t, http.MethodGet, echoPath+`?connect=v1&encoding=json&message=%7B%7D`, "")
	if code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: got %d, want 405", echoPath, code)
	}
	// With its optional header, and a charset.
	code, body, _ = e.post(t, echoPath, `{"message":"v1"}`, "Connect-Protocol-Version", "1", "Content-Type", "application/json; charset=utf-8")
	if code != http.StatusOK || body != `{"message":"v1"}` {
		t.Errorf("POST with Connect-Protocol-Version: got %d %s", code, body)
	}
	// Unknown paths and methods, and bodies that are not application/
	// (REST calls, with no route here), are 404s.
	if code, _, _ := e.post(t, "/grpckit.echo.v1.EchoService/Nope", `{}`); code != http.StatusNotFound {
		t.Errorf("unknown method: got %d, want 404", code)
	}
	if code, _, _ := e.post(t, echoPath, `hi`, "Content-Type", "text/plain"); code != http.StatusNotFound {
		t.Errorf("text/plain: got %d, want 404", code)
	}
}

// Every client protocol reaches the same service: Connect with binary
// protobuf and JSON, gRPC-Web, and gRPC (over HTTP/2 without TLS), unary
// and server streaming.
func TestProtocols(t *testing.T) {
	e := start(t, new(grpckittest.Backend), nil)
	for _, tc := range []struct {
		name string
		hc   *http.Client
		opts []connect.ClientOption
	}{
		{"connect+proto", e.hc, nil},
		{"connect+json", e.hc, []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc-web", e.hc, []connect.ClientOption{connect.WithGRPCWeb()}},
		{"grpc-web+json", e.hc, []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
		{"grpc", e.h2c, []connect.ClientOption{connect.WithGRPC()}},
		{"connect+gzip", e.hc, []connect.ClientOption{connect.WithSendGzip()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := grpckittest.Context(t, 10*time.Second)
			c := connect.NewClient[echov1.EchoRequest, echov1.EchoResponse](tc.hc, e.url+echoPath, tc.opts...)
			resp, err := c.CallUnary(ctx, connect.NewRequest(&echov1.EchoRequest{Message: tc.name}))
			if err != nil || resp.Msg.GetMessage() != tc.name {
				t.Fatalf("Echo: got %v, %v; want %q", resp, err, tc.name)
			}
			sc := connect.NewClient[echov1.ServerStreamRequest, echov1.ServerStreamResponse](tc.hc,
				e.url+echov1.EchoService_ServerStream_FullMethodName, tc.opts...)
			st, err := sc.CallServerStream(ctx, connect.NewRequest(&echov1.ServerStreamRequest{Message: "s", Count: 3}))
			if err != nil {
				t.Fatalf("ServerStream: %v", err)
			}
			defer st.Close()
			var n int32
			for st.Receive() {
				if st.Msg().GetIndex() != n || st.Msg().GetMessage() != "s" {
					t.Errorf("ServerStream message %d: got %v", n, st.Msg())
				}
				n++
			}
			if err := st.Err(); err != nil || n != 3 {
				t.Errorf("ServerStream: got %d messages, %v; want 3, nil", n, err)
			}
		})
	}
	if n := len(e.accessLines(t, "Echo")); n != 6 {
		t.Errorf("access log: got %d Echo lines, want 6", n)
	}
}

// The gateway's port also serves grpckit's own gRPC client (the gateway
// passes gRPC through): one port for gRPC and HTTP/JSON.
func TestGRPCClientSamePort(t *testing.T) {
	e := start(t, new(grpckittest.Backend), nil, grpckit.WithAccessLog(false))
	conn := grpckittest.Dial(t, "passthrough:///"+strings.TrimPrefix(e.url, "http://"), grpckit.WithAccessLog(false))
	resp, err := echov1.NewEchoServiceClient(conn).Echo(grpckittest.Context(t, 10*time.Second), &echov1.EchoRequest{Message: "grpc"})
	if err != nil || resp.GetMessage() != "grpc" {
		t.Fatalf("Echo through the gateway port: got %v, %v", resp, err)
	}
}

// Auth runs for gateway calls: the Authorization header is the call's
// "authorization" metadata.
func TestAuth(t *testing.T) {
	v := auth.VerifierFunc(func(_ context.Context, tok string) (auth.Identity, error) {
		if tok == "alice-token" || tok == "bob-token" {
			return auth.Identity{Subject: strings.TrimSuffix(tok, "-token")}, nil
		}
		return auth.Identity{}, errors.New("unknown token")
	})
	b := &grpckittest.Backend{Handler: func(ctx context.Context, _ *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		id, _ := auth.FromContext(ctx)
		return &echov1.EchoResponse{Message: id.Subject}, nil
	}}
	e := start(t, b, nil, server.WithAuth(auth.WithVerifier(v),
		auth.WithRules(auth.Rule{Method: echov1.EchoService_Echo_FullMethodName, Subjects: []string{"alice"}})))

	for _, tc := range []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{"no token", nil, http.StatusUnauthorized, "unauthenticated"},
		{"bad token", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized, "unauthenticated"},
		{"forbidden", []string{"Authorization", "Bearer bob-token"}, http.StatusForbidden, "permission_denied"},
	} {
		t.Run("curl/"+tc.name, func(t *testing.T) {
			st, body, _ := e.post(t, echoPath, `{"message":"hi"}`, tc.header...)
			if st != tc.status || decodeError(t, body).Code != tc.code {
				t.Errorf("got %d %s, want %d with code %q", st, body, tc.status, tc.code)
			}
		})
	}
	t.Run("curl/allowed", func(t *testing.T) {
		st, body, _ := e.post(t, echoPath, `{"message":"hi"}`, "Authorization", "Bearer alice-token")
		if st != http.StatusOK || body != `{"message":"alice"}` {
			t.Errorf("got %d %s, want 200 {\"message\":\"alice\"}", st, body)
		}
	})
	t.Run("connect", func(t *testing.T) {
		ctx := grpckittest.Context(t, 10*time.Second)
		c := echoClient(e)
		_, err := c.CallUnary(ctx, connect.NewRequest(&echov1.EchoRequest{Message: "hi"}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("without a token: got %v, want unauthenticated", err)
		}
		req := connect.NewRequest(&echov1.EchoRequest{Message: "hi"})
		req.Header().Set("Authorization", "Bearer alice-token")
		resp, err := c.CallUnary(ctx, req)
		if err != nil || resp.Msg.GetMessage() != "alice" {
			t.Errorf("with alice's token: got %v, %v; want alice", resp, err)
		}
	})
	// Health stays public, as on the gRPC port.
	if st, body, _ := e.post(t, "/grpc.health.v1.Health/Check", `{}`); st != http.StatusOK || !strings.Contains(body, "SERVING") {
		t.Errorf("health without a token: got %d %s", st, body)
	}
}

// The rate limit runs for gateway calls, and its ResourceExhausted is HTTP
// 429 with Connect's JSON error.
func TestRateLimit(t *testing.T) {
	e := start(t, new(grpckittest.Backend), nil, server.WithRateLimit(rate.Every(time.Hour), 1))
	if st, body, _ := e.post(t, echoPath, `{"message":"hi"}`); st != http.StatusOK {
		t.Fatalf("first call: got %d %s, want 200", st, body)
	}
	st, body, _ := e.post(t, echoPath, `{"message":"hi"}`)
	if ce := decodeError(t, body); st != http.StatusTooManyRequests || ce.Code != "resource_exhausted" || ce.Message == "" {
		t.Errorf("second call: got %d %s, want 429 with code resource_exhausted", st, body)
	}
	_, err := echoClient(e).CallUnary(grpckittest.Context(t, 10*time.Second), connect.NewRequest(&echov1.EchoRequest{Message: "hi"}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("Connect client's call: got %v, want resource_exhausted", err)
	}
	lines := e.accessLines(t, "Echo")
	if len(lines) != 3 || lines[1]["grpc.code"] != "ResourceExhausted" {
		t.Errorf("access log: got %v, want 3 lines, the second ResourceExhausted", lines)
	}
}

// gRPC status codes become Connect's HTTP statuses and JSON errors, with
// their details (here validation's google.rpc.BadRequest).
func TestErrors(t *testing.T) {
	var fail error
	b := &grpckittest.Backend{Handler: func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		switch req.GetMessage() {
		case "panic":
			panic("boom")
		case "slow":
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, fail
	}}
	e := start(t, b, nil, server.WithValidation())
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{status.Error(codes.InvalidArgument, "bad message"), http.StatusBadRequest, "invalid_argument"},
		{status.Error(codes.NotFound, "no such echo"), http.StatusNotFound, "not_found"},
		{status.Error(codes.FailedPrecondition, "not now"), http.StatusBadRequest, "failed_precondition"},
		{status.Error(codes.Unavailable, "later"), http.StatusServiceUnavailable, "unavailable"},
		{status.Error(codes.DeadlineExceeded, "slow"), http.StatusGatewayTimeout, "deadline_exceeded"},
		{errors.New("plain error"), http.StatusInternalServerError, "unknown"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			fail = tc.err
			st, body, h := e.post(t, echoPath, `{"message":"hi"}`)
			ce := decodeError(t, body)
			if st != tc.status || ce.Code != tc.code || ce.Message != status.Convert(tc.err).Message() {
				t.Errorf("got %d %s, want %d {code: %q, message: %q}", st, body, tc.status, tc.code, status.Convert(tc.err).Message())
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
		})
	}
	t.Run("panic", func(t *testing.T) {
		st, body, _ := e.post(t, echoPath, `{"message":"panic"}`)
		if st != http.StatusInternalServerError || decodeError(t, body).Code != "internal" {
			t.Errorf("got %d %s, want 500 with code internal", st, body)
		}
	})
	t.Run("validation", func(t *testing.T) {
		st, body, _ := e.post(t, echoPath, `{"message":"`+strings.Repeat("x", 1025)+`"}`)
		ce := decodeError(t, body)
		if st != http.StatusBadRequest || ce.Code != "invalid_argument" || len(ce.Details) == 0 {
			t.Fatalf("got %d %s, want 400 invalid_argument with details", st, body)
		}
		if ce.Details[0].Type != "buf.validate.Violations" && ce.Details[0].Type != "google.rpc.BadRequest" {
			t.Errorf("detail type: got %q", ce.Details[0].Type)
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		st, body, _ := e.post(t, echoPath, `{"message":`)
		if st != http.StatusBadRequest || decodeError(t, body).Code != "invalid_argument" {
			t.Errorf("got %d %s, want 400 invalid_argument", st, body)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		// Connect's timeout header becomes the call's deadline.
		st, body, _ := e.post(t, echoPath, `{"message":"slow"}`, "Connect-Timeout-Ms", "50")
		if st != http.StatusGatewayTimeout || decodeError(t, body).Code != "deadline_exceeded" {
			t.Errorf("got %d %s, want 504 deadline_exceeded", st, body)
		}
	})
}

var echoRule = &annotations.HttpRule{
	Selector: "grpckit.echo.v1.EchoService.Echo",
	Pattern:  &annotations.HttpRule_Get{Get: "/v1/echo/{message}"},
	AdditionalBindings: []*annotations.HttpRule{{
		Pattern: &annotations.HttpRule_Post{Post: "/v1/echo"},
		Body:    "*",
	}},
}

// REST routes given with WithRules transcode to the same calls, through
// the same chain; errors are google.rpc.Status JSON.
func TestREST(t *testing.T) {
	var fail error
	b := &grpckittest.Backend{Handler: func(_ context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		if fail != nil {
			return nil, fail
		}
		return &echov1.EchoResponse{Message: req.GetMessage()}, nil
	}}
	e := start(t, b, []gateway.Option{gateway.WithRules(echoRule)}, server.WithRateLimit(rate.Every(time.Hour), 3))
	if st, body, _ := e.do(t, http.MethodGet, "/v1/echo/hello", ""); st != http.StatusOK || body != `{"message":"hello"}` {
		t.Errorf("GET /v1/echo/hello: got %d %s", st, body)
	}
	if st, body, _ := e.post(t, "/v1/echo", `{"message":"posted"}`); st != http.StatusOK || body != `{"message":"posted"}` {
		t.Errorf("POST /v1/echo: got %d %s", st, body)
	}
	fail = status.Error(codes.InvalidArgument, "bad")
	st, body, _ := e.do(t, http.MethodGet, "/v1/echo/x", "")
	var s struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &s); err != nil || st != http.StatusBadRequest || s.Code != int(codes.InvalidArgument) || s.Message != "bad" {
		t.Errorf("failing call: got %d %s, want 400 {code: 3, message: bad}", st, body)
	}
	// The rate limit (burst 3) covers REST calls too.
	st, body, _ = e.do(t, http.MethodGet, "/v1/echo/x", "")
	if err := json.Unmarshal([]byte(body), &s); err != nil || st != http.StatusTooManyRequests || s.Code != int(codes.ResourceExhausted) {
		t.Errorf("call over the limit: got %d %s, want 429 {code: 8}", st, body)
	}
	if n := len(e.accessLines(t, "Echo")); n != 4 {
		t.Errorf("access log: got %d Echo lines, want 4", n)
	}
}

func TestWithServices(t *testing.T) {
	e := start(t, new(grpckittest.Backend), []gateway.Option{gateway.WithServices("grpckit.echo.v1.EchoService")})
	if st, body, _ := e.post(t, echoPath, `{"message":"hi"}`); st != http.StatusOK {
		t.Errorf("Echo: got %d %s, want 200", st, body)
	}
	if st, _, _ := e.post(t, "/grpc.health.v1.Health/Check", `{}`); st != http.StatusNotFound {
		t.Errorf("health, not served: got %d, want 404", st)
	}
}

func TestMaxMessageBytes(t *testing.T) {
	e := start(t, new(grpckittest.Backend), []gateway.Option{gateway.WithMaxMessageBytes(64)})
	if st, body, _ := e.post(t, echoPath, `{"message":"hi"}`); st != http.StatusOK {
		t.Errorf("small message: got %d %s, want 200", st, body)
	}
	st, body, _ := e.post(t, echoPath, `{"message":"`+strings.Repeat("x", 100)+`"}`)
	if st != http.StatusTooManyRequests || decodeError(t, body).Code != "resource_exhausted" {
		t.Errorf("large message: got %d %s, want 429 resource_exhausted", st, body)
	}
}

func TestNewErrors(t *testing.T) {
	srv := grpckittest.NewServer(t, new(grpckittest.Backend).Register, grpckit.WithAccessLog(false))
	for _, tc := range []struct {
		name string
		srv  gateway.Server
		opts []gateway.Option
		want string
	}{
		{"nil server", nil, nil, "nil server"},
		{"unknown service", srv.Server, []gateway.Option{gateway.WithServices("nope.Service")}, `"nope.Service" is not registered`},
		{"no services", srv.Server, []gateway.Option{gateway.WithServices()}, "no service named"},
		{"zero max", srv.Server, []gateway.Option{gateway.WithMaxMessageBytes(0)}, "want n >= 1"},
		{"rule for no method", srv.Server, []gateway.Option{gateway.WithServices("grpc.health.v1.Health"), gateway.WithRules(echoRule)}, "gateway:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := gateway.New(tc.srv, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: got %v, %v; want an error containing %q", h, err, tc.want)
			}
		})
	}
}

// After the server stops, gateway calls fail (they do not hang).
func TestClosedServer(t *testing.T) {
	e := start(t, new(grpckittest.Backend), nil)
	if err := e.srv.Server.Close(); err != nil {
		t.Fatal(err)
	}
	st, body, _ := e.post(t, echoPath, `{"message":"hi"}`)
	if st != http.StatusServiceUnavailable || decodeError(t, body).Code != "unavailable" {
		t.Errorf("after Close: got %d %s, want 503 unavailable", st, body)
	}
}

// blocking is a backend whose Echo waits, once entered is signalled, until
// release is closed or the call ends. (A call that cannot signal entered,
// nobody receiving, still ends with its context.)
func blocking() (*grpckittest.Backend, chan struct{}, chan struct{}) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	return &grpckittest.Backend{Handler: func(ctx context.Context, req *echov1.EchoRequest) (*echov1.EchoResponse, error) {
		select {
		case entered <- struct{}{}:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		select {
		case <-release:
			return &echov1.EchoResponse{Message: req.GetMessage()}, nil
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}}, entered, release
}

type result struct {
	status int
	body   string
}

func (e *env) postAsync(t *testing.T) <-chan result {
	done := make(chan result, 1)
	go func() {
		st, body, _ := e.post(t, echoPath, `{"message":"hi"}`)
		done <- result{st, body}
	}()
	return done
}

// Stopping the HTTP server first lets gateway calls in flight finish;
// stopping the gRPC server first cancels them (grpc.Server.GracefulStop
// closes net/http-served calls at once).
func TestShutdown(t *testing.T) {
	t.Run("http first", func(t *testing.T) {
		b, entered, release := blocking()
		e := start(t, b, nil)
		done := e.postAsync(t)
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- e.hs.Config.Shutdown(grpckittest.Context(t, 10*time.Second)) }()
		time.Sleep(50 * time.Millisecond) // Shutdown waits for the call
		close(release)
		if r := <-done; r.status != http.StatusOK {
			t.Errorf("call in flight: got %d %s, want 200", r.status, r.body)
		}
		if err := <-stopped; err != nil {
			t.Errorf("http.Server.Shutdown: %v", err)
		}
		if err := e.srv.Server.Shutdown(grpckittest.Context(t, 10*time.Second)); err != nil {
			t.Errorf("server Shutdown: %v", err)
		}
	})
	t.Run("server only", func(t *testing.T) {
		// Server.Shutdown waits for the gateway's calls in flight (grpc-go's
		// GracefulStop alone would cancel them) and refuses new ones.
		b, entered, release := blocking()
		e := start(t, b, nil)
		done := e.postAsync(t)
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- e.srv.Server.Shutdown(grpckittest.Context(t, 10*time.Second)) }()
		// A late call sent before Shutdown marks the server closing is
		// served: it blocks in the backend like the first. It gets a 1 s
		// context, so that it gives up and the next one is tried, rather
		// than holding the wait for 10 s; the wait is for a late call that
		// is refused.
		late := func() int {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/grpckit.echo.v1.EchoService/Echo",
				strings.NewReader(`{"message":"late"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := e.hc.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					t.Fatalf("late call: %v", err)
				}
				return 0 // served, and given up after 1 s
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode
		}
		wait.For(t, 10*time.Second, "new calls refused", func() bool { return late() == http.StatusServiceUnavailable })
		close(release)
		if r := <-done; r.status != http.StatusOK {
			t.Errorf("call in flight: got %d %s, want 200", r.status, r.body)
		}
		if err := <-stopped; err != nil {
			t.Errorf("server Shutdown: %v", err)
		}
	})
}
