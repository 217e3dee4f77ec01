package admin

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grpckit/grpckit/balancer"
	"github.com/grpckit/grpckit/internal/adminstate"
	"github.com/grpckit/grpckit/resolver"
)

// Option configures [New].
type Option func(*config)

type config struct {
	logger  *slog.Logger
	pprof   bool
	regs    []prometheus.Gatherer
	refresh time.Duration
	errs    []error
}

// WithPprof adds Go's profiler (net/http/pprof) under /debug/pprof/:
// profiles can reveal code paths, arguments and memory, and a CPU profile
// costs CPU while it runs, so serve it only on loopback or behind
// authentication. /debug/pprof/cmdline is left out: a command line may hold
// secrets. Default: off.
func WithPprof() Option { return func(c *config) { c.pprof = true } }

// WithLogger sets the logger of the admin endpoint's HTTP server
// ([Handler.Listen]); nil is an error. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.errs = append(c.errs, errors.New("admin: WithLogger: nil logger"))
			return
		}
		c.logger = l
	}
}

// WithRegistry adds g to what /metrics serves, beside the registries of the
// process's grpckit servers and clients (say, a registry holding your own
// application's series). Default: none.
func WithRegistry(g prometheus.Gatherer) Option {
	return func(c *config) {
		if g == nil {
			c.errs = append(c.errs, errors.New("admin: WithRegistry: nil registry"))
			return
		}
		c.regs = append(c.regs, g)
	}
}

// WithRefresh sets how often the HTML page fetches the state again; the
// page's ?refresh= query parameter (a Go duration, at least 100ms)
// overrides it. Default: 2s.
func WithRefresh(d time.Duration) Option {
	return func(c *config) {
		if d < 100*time.Millisecond {
			c.errs = append(c.errs, fmt.Errorf("admin: WithRefresh(%v): want at least 100ms", d))
			return
		}
		c.refresh = d
	}
}

// Handler is the admin handler of a process. It is an http.Handler; see
// the package documentation for what it serves.
type Handler struct {
	cfg     config
	mux     *http.ServeMux
	started time.Time
}

// New returns the admin handler. It fails on an invalid option.
func New(opts ...Option) (*Handler, error) {
	c := config{logger: slog.Default(), refresh: 2 * time.Second}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	h := &Handler{cfg: c, mux: http.NewServeMux(), started: processStart}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.Handle("GET /static/", http.FileServerFS(staticFS))
	h.mux.HandleFunc("GET /debug/grpckit/state", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, h.State()) })
	h.mux.HandleFunc("GET /debug/grpckit/resolvers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, resolver.Snapshot())
	})
	h.mux.HandleFunc("GET /debug/grpckit/balancers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, balancer.Snapshot())
	})
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.GathererFunc(h.gather),
		promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError,
			ErrorLog: slog.NewLogLogger(c.logger.Handler(), slog.LevelWarn)}))
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /debug/vars", expvarJSON)
	if c.pprof {
		h.mux.HandleFunc("/debug/pprof/", pprof.Index)
		h.mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
		h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return h, nil
}

// processStart approximates the process's start.
var processStart = time.Now()

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

// State returns what /debug/grpckit/state serves.
func (h *Handler) State() adminstate.State {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	now := time.Now()
	exe, _ := os.Executable()
	st := adminstate.State{
		Time: now,
		Process: adminstate.Process{PID: os.Getpid(), Command: exe, GoVersion: runtime.Version(), Started: h.started,
			Uptime: now.Sub(h.started), Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapAlloc, GCCycles: ms.NumGC},
		Servers:   []adminstate.Server{},
		Clients:   []adminstate.Client{},
		Resolvers: resolver.Snapshot(),
		Balancers: balancer.Snapshot(),
	}
	for _, s := range adminstate.Servers.All(nil) {
		st.Servers = append(st.Servers, s.State())
	}
	for _, c := range adminstate.Clients.All(nil) {
		st.Clients = append(st.Clients, c.State())
	}
	slices.SortFunc(st.Servers, func(a, b adminstate.Server) int { return int(a.ID - b.ID) })
	slices.SortFunc(st.Clients, func(a, b adminstate.Client) int { return int(a.ID - b.ID) })
	return st
}

// healthz answers 200 while every grpckit server of the process is
// SERVING (and in a process without one), 503 otherwise.
func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	var down []string
	for _, s := range adminstate.Servers.All(nil) {
		st := s.State()
		if st.Status != "SERVING" {
			down = append(down, fmt.Sprintf("server %d: %s", st.ID, st.Status))
		}
	}
	if len(down) > 0 {
		slices.Sort(down)
		http.Error(w, "NOT_SERVING\n"+strings.Join(down, "\n"), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("SERVING\n"))
}

//go:embed static
var static embed.FS

// staticFS serves the page's script and style sheet under /static/.
var staticFS = func() fs.FS { return static }()

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// page serves the HTML page: rendered with the state, then refreshed by
// its script.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	refresh := h.cfg.refresh
	if q := r.URL.Query().Get("refresh"); q != "" {
		if d, err := time.ParseDuration(q); err == nil && d >= 100*time.Millisecond {
			refresh = d
		}
	}
	st := h.State()
	js, err := json.Marshal(st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTemplate.Execute(w, struct {
		State     adminstate.State
		StateJSON string
		RefreshMs int64
		Pprof     bool
	}{st, string(js), refresh.Milliseconds(), h.cfg.pprof})
}

// expvarJSON serves expvar's variables as expvar.Handler does, less
// "cmdline": a command line may hold secrets.
func expvarJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "{")
	sep := "\n"
	expvar.Do(func(kv expvar.KeyValue) {
		if kv.Key != "cmdline" {
			fmt.Fprintf(w, "%s%q: %s", sep, kv.Key, kv.Value)
			sep = ",\n"
		}
	})
	fmt.Fprint(w, "\n}\n")
}

// writeJSON writes v as indented JSON.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// Timeouts of the admin endpoint's HTTP server ([Handler.Listen]).
const (
	// ReadTimeout bounds reading a request, headers included.
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds writing a response; it leaves room for a CPU
	// profile or trace of up to a minute.
	WriteTimeout = 90 * time.Second
	// IdleTimeout closes keep-alive connections idle for longer.
	IdleTimeout = 30 * time.Second
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
)

// Server is an admin handler served on an address of its own.
type Server struct {
	srv  *http.Server
	lis  net.Listener
	done chan struct{}
}

// Listen binds addr and serves h on it, with the timeouts above, until
// Close. Serve it on loopback, or put it behind your own authentication
// by mounting h on your own server instead: it warns when it serves pprof
// beyond loopback.
func (h *Handler) Listen(addr string) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	log := h.cfg.logger
	if h.cfg.pprof && !isLoopback(lis.Addr()) {
		log.LogAttrs(context.Background(), slog.LevelWarn,
			"admin endpoint serves pprof beyond loopback, without authentication",
			slog.String("admin.address", lis.Addr().String()))
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: ReadTimeout,
			ReadTimeout:       ReadTimeout,
			WriteTimeout:      WriteTimeout,
			IdleTimeout:       IdleTimeout,
			MaxHeaderBytes:    MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		lis:  lis,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.LogAttrs(context.Background(), slog.LevelError, "admin endpoint stopped", slog.String("error", err.Error()))
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// URL returns the page's URL ("http://127.0.0.1:9090/").
func (s *Server) URL() string { return "http://" + s.lis.Addr().String() + "/" }

// Close closes the listener and every connection, and waits for the
// serving goroutine. It is idempotent.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
