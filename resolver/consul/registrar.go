package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/resolver"
	"github.com/grpckit/grpckit/resolver/internal/registration"
)

// Registrar defaults.
const (
	// DefaultTTL is the TTL of the check the registrar keeps passing; it
	// updates the check every TTL/3.
	DefaultTTL = 10 * time.Second
	// DefaultDeregisterCriticalAfter is how long the agent keeps a service
	// whose check is critical before removing it (Consul's minimum is one
	// minute).
	DefaultDeregisterCriticalAfter = time.Minute
)

// Registrar errors.
var (
	// ErrBadAddress is returned by Register for an address that cannot be
	// announced (no port, or an unspecified host such as 0.0.0.0 without
	// WithAddress).
	ErrBadAddress = errors.New("consul: bad address")
	// ErrRegistered is returned by Register when called twice.
	ErrRegistered = errors.New("consul: already registered")
	// ErrBadOption is returned (wrapped) by NewRegistrar and NewBuilder for
	// invalid options.
	ErrBadOption = errors.New("consul: bad option")
)

type registrarConfig struct {
	address string
	id      string
	tags    []string
	meta    map[string]string
	weights api.AgentWeights
	ttl     time.Duration
	dcsa    time.Duration
	health  func(context.Context) error
	backoff resolver.Backoff
	logger  *slog.Logger
	errs    []error
}

// WithAddress announces addr (host:port) instead of the listener's address;
// use it when the server listens on 0.0.0.0 or behind NAT. Default: the
// address Register receives.
func WithAddress(addr string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.address = addr })
}

// WithInstanceID sets the Consul service ID, unique on the agent. Default:
// "<service>-<host>-<port>".
func WithInstanceID(id string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.id = id })
}

// WithTags sets the service's tags. Default: none.
func WithTags(tags ...string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.tags = slices.Clone(tags) })
}

// WithMetadata sets the service's metadata; resolvers see it as endpoint
// metadata ("zone" and "version" fill Endpoint.Zone and Version). Default:
// none.
func WithMetadata(meta map[string]string) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.meta = maps.Clone(meta) })
}

// WithWeights sets the weights the service gets while its check is passing
// and while it is warning (passing ≥ 1, warning ≥ 0). Default: 1 and 1,
// Consul's own default.
func WithWeights(passing, warning int) RegistrarOption {
	return registrarOption(func(c *registrarConfig) {
		if passing < 1 || warning < 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: weights %d/%d (want passing ≥ 1, warning ≥ 0)", ErrBadOption, passing, warning))
			return
		}
		c.weights = api.AgentWeights{Passing: passing, Warning: warning}
	})
}

// WithTTL sets the TTL of the service's check; the registrar updates it
// every ttl/3. Default: [DefaultTTL].
func WithTTL(ttl time.Duration) RegistrarOption {
	return registrarOption(func(c *registrarConfig) {
		if ttl < 30*time.Millisecond {
			c.errs = append(c.errs, fmt.Errorf("%w: TTL %v below 30ms", ErrBadOption, ttl))
			return
		}
		c.ttl = ttl
	})
}

// WithDeregisterCriticalAfter sets the check's DeregisterCriticalServiceAfter:
// the agent removes the service once its check has been critical that long
// (a server that died without deregistering). Consul enforces at least one
// minute. Default: [DefaultDeregisterCriticalAfter].
func WithDeregisterCriticalAfter(d time.Duration) RegistrarOption {
	return registrarOption(func(c *registrarConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("%w: DeregisterCriticalServiceAfter %v", ErrBadOption, d))
			return
		}
		c.dcsa = d
	})
}

// WithHealthFunc sets the function the registrar calls before each TTL
// update: nil keeps the check passing, an error makes it critical with the
// error as output (callers stop sending traffic within one blocking-query
// round). Use it to tie the check to the server's own health. Default: none,
// the check passes while the registrar runs.
func WithHealthFunc(f func(ctx context.Context) error) RegistrarOption {
	return registrarOption(func(c *registrarConfig) { c.health = f })
}

// Registrar announces a server to a Consul agent with a TTL check it keeps
// passing, and puts the registration back whenever the agent loses it (an
// agent restarted without its data, a service removed by hand or by
// DeregisterCriticalServiceAfter). It implements server.Registrar; pass it
// to server.WithRegistrar.
type Registrar struct {
	client  *api.Client
	service string
	cfg     registrarConfig

	mu      sync.Mutex
	reg     *api.AgentServiceRegistration // nil before Register
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
	status  registration.Tracker
}

// Status returns the registration's state, for admin pages.
func (r *Registrar) Status() resolver.Registration {
	st := r.status.Status()
	if st.Key == "" {
		st.Registry, st.Service, st.Key = "consul", r.service, r.ServiceID()
	}
	return st
}

// NewRegistrar returns a registrar for service on the agent client talks
// to. It fails on a nil client, an invalid service name (see
// resolver.ValidateService) or an invalid option.
func NewRegistrar(client *api.Client, service string, opts ...RegistrarOption) (*Registrar, error) {
	cfg := registrarConfig{
		weights: api.AgentWeights{Passing: 1, Warning: 1},
		ttl:     DefaultTTL,
		dcsa:    DefaultDeregisterCriticalAfter,
		logger:  slog.Default(),
	}
	for _, o := range opts {
		if o != nil {
			o.applyRegistrar(&cfg)
		}
	}
	if client == nil {
		cfg.errs = append(cfg.errs, fmt.Errorf("%w: nil client", ErrBadOption))
	}
	if err := resolver.ValidateService(service); err != nil {
		cfg.errs = append(cfg.errs, err)
	}
	if cfg.address != "" {
		if _, _, err := splitAddr(cfg.address); err != nil {
			cfg.errs = append(cfg.errs, fmt.Errorf("%w: WithAddress: %w", ErrBadOption, err))
		}
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	return &Registrar{client: client, service: service, cfg: cfg}, nil
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: %w", ErrBadAddress, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: %q: bad port", ErrBadAddress, addr)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%w: %q: no host", ErrBadAddress, addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "", 0, fmt.Errorf("%w: %q: unspecified host, use WithAddress", ErrBadAddress, addr)
	}
	return host, port, nil
}

// ServiceID returns the Consul service ID, known once Register was called.
func (r *Registrar) ServiceID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg == nil {
		return r.cfg.id
	}
	return r.reg.ID
}

// CheckID returns the ID of the service's TTL check.
func (r *Registrar) CheckID() string { return "service:" + r.ServiceID() }

// Register announces the server at addr (or the WithAddress address). It
// returns at once: a goroutine registers the service, keeps its check
// passing, and registers it again with backoff whenever the agent fails or
// forgets it, until Deregister. It fails only on an invalid address or when
// called twice.
func (r *Registrar) Register(_ context.Context, addr string) error {
	if r.cfg.address != "" {
		addr = r.cfg.address
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg != nil || r.stopped {
		return ErrRegistered
	}
	id := r.cfg.id
	if id == "" {
		id = r.service + "-" + host + "-" + strconv.Itoa(port)
	}
	w := r.cfg.weights
	r.reg = &api.AgentServiceRegistration{
		ID: id, Name: r.service, Address: host, Port: port,
		Tags: r.cfg.tags, Meta: r.cfg.meta, Weights: &w,
		Check: &api.AgentServiceCheck{
			CheckID:                        "service:" + id,
			Name:                           "grpckit TTL",
			TTL:                            r.cfg.ttl.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: r.cfg.dcsa.String(),
		},
	}
	r.status.Init("consul", r.service, id, net.JoinHostPort(host, strconv.Itoa(port)))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(ctx, r.reg)
	return nil
}

// run registers and keeps the check passing until ctx ends.
func (r *Registrar) run(ctx context.Context, reg *api.AgentServiceRegistration) {
	defer close(r.done)
	log := r.cfg.logger.With(slog.String("consul.service_id", reg.ID))
	agent := r.client.Agent()
	every := r.cfg.ttl / 3
	registered := false
	failures := 0
	for {
		var err error
		if !registered {
			err = agent.ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
			if err == nil {
				registered = true
				if failures > 0 {
					log.LogAttrs(ctx, slog.LevelInfo, "consul: service registered again", slog.Int("consul.attempts", failures+1))
				}
			}
		} else {
			status, output := api.HealthPassing, "grpckit: serving"
			if f := r.cfg.health; f != nil {
				if herr := f(ctx); herr != nil {
					status, output = api.HealthCritical, herr.Error()
				}
			}
			err = agent.UpdateTTLOpts(reg.Check.CheckID, output, status, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				// The agent forgot the check (404 from a restarted agent,
				// 500 from older versions) or is unreachable: register
				// again, which is idempotent.
				registered = false
				var se api.StatusError
				if errors.As(err, &se) && se.Code == http.StatusNotFound {
					r.status.Down(err)
					log.LogAttrs(ctx, slog.LevelWarn, "consul: agent lost the registration, registering again")
					continue
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.status.Down(err)
		} else if registered {
			r.status.Up()
		}
		delay := every
		if err != nil {
			if failures == 0 {
				log.LogAttrs(ctx, slog.LevelWarn, "consul: agent unreachable, retrying", slog.String("error", err.Error()))
			}
			delay = min(r.cfg.backoff.Delay(failures), every)
			failures++
		} else {
			failures = 0
		}
		if !resolver.Sleep(ctx, delay) {
			return
		}
	}
}

// Deregister stops the registrar's goroutine and removes the service from
// the agent, waiting at most until ctx ends. A service the agent no longer
// knows is not an error. It is idempotent.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	reg, cancel, done := r.reg, r.cancel, r.done
	r.mu.Unlock()
	if reg == nil {
		return nil
	}
	cancel()
	<-done
	r.status.Down(errors.New("deregistered"))
	err := r.client.Agent().ServiceDeregisterOpts(reg.ID, (&api.QueryOptions{}).WithContext(ctx))
	var se api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("consul: deregister %s: %w", reg.ID, err)
	}
	return nil
}
