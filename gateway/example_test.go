package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/api/annotations"

	"github.com/grpckit/grpckit"
	"github.com/grpckit/grpckit/gateway"
	"github.com/grpckit/grpckit/grpckittest"
	"github.com/grpckit/grpckit/server"
)

// A JSON call, as curl sends it, through the gateway and the server's
// chain: the rate limit (one call per hour here) refuses the second one
// with Connect's JSON error and HTTP 429.
func Example() {
	srv, err := server.New(grpckit.WithInsecure(),
		grpckit.WithLogger(slog.New(slog.DiscardHandler)),
		server.WithRateLimit(rate.Every(time.Hour), 1))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	new(grpckittest.Backend).Register(srv) // grpckit.echo.v1.EchoService
	gw, err := gateway.New(srv)
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(gw)
	defer hs.Close()

	for range 2 {
		// curl -H 'Content-Type: application/json' -d '{"message":"hi"}' \
		//	$URL/grpckit.echo.v1.EchoService/Echo
		resp, err := hs.Client().Post(hs.URL+"/grpckit.echo.v1.EchoService/Echo", "application/json", strings.NewReader(`{"message":"hi"}`))
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	// Output:
	// 200 {"message":"hi"}
	// 429 {"code":"resource_exhausted","message":"too many requests"}
}

// REST routes for a service whose .proto has no google.api.http
// annotations.
func ExampleWithRules() {
	srv, err := server.New(grpckit.WithInsecure(), grpckit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	new(grpckittest.Backend).Register(srv)
	gw, err := gateway.New(srv, gateway.WithRules(&annotations.HttpRule{
		Selector: "grpckit.echo.v1.EchoService.Echo",
		Pattern:  &annotations.HttpRule_Get{Get: "/v1/echo/{message}"},
	}))
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(gw)
	defer hs.Close()

	resp, err := hs.Client().Get(hs.URL + "/v1/echo/hello") // curl $URL/v1/echo/hello
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"message":"hello"}
}

// gRPC on its own port with grpc-go's transport, the gateway on another
// with an http.Server that times out slow and idle clients. (For one
// port, serve only hs, with HTTP/2: TLS, or
// hs.Protocols.SetUnencryptedHTTP2(true); gRPC clients then go through
// the gateway.)
func ExampleNew_ports() {
	srv, err := server.New(grpckit.WithInsecure())
	if err != nil {
		panic(err)
	}
	new(grpckittest.Backend).Register(srv)
	gw, err := gateway.New(srv)
	if err != nil {
		panic(err)
	}
	grpcLis, err := net.Listen("tcp", ":9090")
	if err != nil {
		panic(err)
	}
	go srv.Serve(grpcLis)

	hs := &http.Server{
		Addr:              ":8080",
		Handler:           gw,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    server.DefaultMaxHeaderListSize,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: server.DefaultMaxConcurrentStreams},
	}
	go hs.ListenAndServe()

	// On the way out: the HTTP server first, which waits for the gateway's
	// calls in flight, then the gRPC server.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	_ = srv.Shutdown(ctx)
}
