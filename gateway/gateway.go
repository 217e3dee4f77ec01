package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Server is what the gateway serves: a gRPC server reachable through
// net/http. *server.Server (package github.com/grpckit/grpckit/server)
// and *grpc.Server implement it. ServeHTTP must serve gRPC calls
// (grpc.Server.ServeHTTP); the gateway turns every request into one.
type Server interface {
	http.Handler
	// GetServiceInfo lists the registered services, as
	// grpc.Server.GetServiceInfo does.
	GetServiceInfo() map[string]grpc.ServiceInfo
}

// DefaultMaxMessageBytes is the largest request or response message the
// gateway buffers by default, the same as the gRPC server's default
// receive limit (server.DefaultMaxRecvMsgSize).
const DefaultMaxMessageBytes = 4 << 20

// Option configures [New].
type Option func(*config)

type config struct {
	services []string // nil: all
	rules    []*annotations.HttpRule
	maxMsg   uint32
	errs     []error
}

// WithServices serves only the named services (fully qualified, e.g.
// "grpckit.echo.v1.EchoService"); New fails if one is not registered.
// Calls to the others get 404 Not Found. Options accumulate. Default:
// every service registered when New runs, health and reflection included.
func WithServices(names ...string) Option {
	return func(c *config) {
		if len(names) == 0 {
			c.errs = append(c.errs, errors.New("gateway: WithServices: no service named"))
			return
		}
		c.services = append(c.services, names...)
	}
}

// WithRules adds REST routes (google.api.HttpRule, the google.api.http
// annotation's message) to methods whose .proto files carry no
// google.api.http annotations, or extra routes to those that do. Each
// rule's Selector names a method ("grpckit.echo.v1.EchoService.Echo");
// New fails if it names none the gateway serves. For example, to serve
// GET /v1/echo/{message} and POST /v1/echo with the request as the body:
//
//	gateway.WithRules(&annotations.HttpRule{
//		Selector: "grpckit.echo.v1.EchoService.Echo",
//		Pattern:  &annotations.HttpRule_Get{Get: "/v1/echo/{message}"},
//		AdditionalBindings: []*annotations.HttpRule{{
//			Pattern: &annotations.HttpRule_Post{Post: "/v1/echo"},
//			Body:    "*",
//		}},
//	})
//
// Options accumulate. Default: only the routes the annotations declare.
func WithRules(rules ...*annotations.HttpRule) Option {
	return func(c *config) { c.rules = append(c.rules, rules...) }
}

// WithMaxMessageBytes bounds, in bytes (n >= 1), each request and response
// message the gateway buffers to transcode it; a larger one fails the call
// with resource_exhausted. Keep it at most the server's receive limit
// (grpckit.WithMaxRecvMsgSize), which the server applies anyway. Default:
// [DefaultMaxMessageBytes] (vanguard's own default is 4 GiB).
func WithMaxMessageBytes(n uint32) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, errors.New("gateway: WithMaxMessageBytes: want n >= 1"))
			return
		}
		c.maxMsg = n
	}
}

// New returns a handler that serves the services registered on srv, when
// New runs, to Connect (JSON and binary protobuf), gRPC-Web and gRPC
// clients, and to REST clients on the routes of the methods' google.api.http
// annotations and of [WithRules]. Every request becomes a gRPC call on
// srv.ServeHTTP, so it runs through the server's whole interceptor chain.
// Register the services before calling New: services registered later are
// not served. New fails if a service's schema is not linked into the
// program (protoregistry.GlobalFiles; generated code registers it), if an
// option is invalid, or if a rule matches no served method.
func New(srv Server, opts ...Option) (http.Handler, error) {
	if srv == nil {
		return nil, errors.New("gateway: nil server")
	}
	c := &config{maxMsg: DefaultMaxMessageBytes}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	info := srv.GetServiceInfo()
	names := c.services
	if names == nil {
		for name := range info {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return nil, errors.New("gateway: the server has no registered service")
	}
	services := make([]*vanguard.Service, 0, len(names))
	unary := map[string]bool{}
	for _, name := range names {
		si, ok := info[name]
		if !ok {
			return nil, fmt.Errorf("gateway: service %q is not registered on the server", name)
		}
		services = append(services, vanguard.NewService(name, stopped{srv}))
		for _, m := range si.Methods {
			if !m.IsClientStream && !m.IsServerStream {
				unary["/"+name+"/"+m.Name] = true
			}
		}
	}
	t, err := vanguard.NewTranscoder(services,
		vanguard.WithRules(c.rules...),
		vanguard.WithCodec(func(r vanguard.TypeResolver) vanguard.Codec {
			return jsonCodec{vanguard.NewJSONCodec(r)}
		}),
		vanguard.WithDefaultServiceOptions(
			// The server speaks gRPC with binary protobuf, and
			// decompresses only what grpc-go's registered compressors
			// can: the gateway decodes and decompresses the rest.
			vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
			vanguard.WithTargetCodecs(vanguard.CodecProto),
			vanguard.WithNoTargetCompression(),
			vanguard.WithMaxMessageBufferBytes(c.maxMsg),
		))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return &handler{t: t, unary: unary}, nil
}

// handler is the transcoder, with Connect's unary POST recognized without
// its Connect-Protocol-Version header.
type handler struct {
	t     *vanguard.Transcoder
	unary map[string]bool // "/service/Method" of the unary methods served
}

// ServeHTTP serves r. Vanguard takes a POST without a
// Connect-Protocol-Version header for a REST call, and so answers 404 to
// what curl sends to a method's path with a JSON body. connect-go's own
// handlers accept such a call as Connect (the header is optional unless a
// server requires it), and so does the gateway: a POST with an
// application/ media type (not application/connect+..., application/grpc
// or application/grpc-web, which name their protocol) to a unary method's
// path is a Connect call.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && h.unary[r.URL.Path] && len(r.Header["Connect-Protocol-Version"]) == 0 {
		if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/") &&
			!strings.HasPrefix(ct, "application/connect+") && !strings.HasPrefix(ct, "application/grpc") {
			r = r.Clone(r.Context())
			r.Header.Set("Connect-Protocol-Version", "1")
		}
	}
	h.t.ServeHTTP(w, r)
}

// jsonCodec is vanguard's JSON codec (the one it uses by default) whose
// decoding errors are invalid_argument. The gateway decodes JSON only from
// clients (the server speaks binary protobuf), so a message that does not
// decode is the caller's error, which vanguard would otherwise report as
// unknown, with HTTP 500.
type jsonCodec struct{ *vanguard.JSONCodec }

func (c jsonCodec) Unmarshal(data []byte, msg proto.Message) error {
	return invalidArgument(c.JSONCodec.Unmarshal(data, msg))
}

func (c jsonCodec) UnmarshalField(data []byte, msg proto.Message, field protoreflect.FieldDescriptor) error {
	return invalidArgument(c.JSONCodec.UnmarshalField(data, msg, field))
}

func invalidArgument(err error) error {
	if err == nil {
		return nil
	}
	return connect.NewError(connect.CodeInvalidArgument, err)
}

// stopped answers with a gRPC Unavailable error the calls that srv ends
// without a response: grpc.Server.ServeHTTP writes nothing once the server
// has stopped, which vanguard would report as an unknown error about codecs.
type stopped struct{ srv Server }

func (s stopped) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &watchWriter{ResponseWriter: w}
	s.srv.ServeHTTP(rw, r)
	if !rw.wrote {
		h := w.Header()
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(int(codes.Unavailable)))
		h.Set("Grpc-Message", "gateway: the server is not serving")
		w.WriteHeader(http.StatusOK)
	}
}

// watchWriter records whether the handler responded. grpc.Server.ServeHTTP
// needs an http.Flusher.
type watchWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *watchWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *watchWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *watchWriter) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *watchWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
