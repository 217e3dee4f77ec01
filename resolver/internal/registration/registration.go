// Package registration tracks a registrar's state for its Status method.
package registration

import (
	"sync"
	"time"

	"github.com/grpckit/grpckit/resolver"
)

// Tracker keeps a resolver.Registration for a registrar: registrars
// call Up and Down as the registry holds or loses their registration. The
// zero value is ready; it is safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	r  resolver.Registration
	up bool // ever registered
}

// Init sets the fixed fields.
func (t *Tracker) Init(registry, service, key, addr string) {
	t.mu.Lock()
	t.r.Registry, t.r.Service, t.r.Key, t.r.Address = registry, service, key, addr
	t.mu.Unlock()
}

// Up records that the registry holds the registration.
func (t *Tracker) Up() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.r.Registered {
		return
	}
	if t.up {
		t.r.Repairs++
	}
	t.up = true
	t.r.Registered, t.r.Since, t.r.Error = true, time.Now(), ""
}

// Down records that the registration is lost (or was never made), and why.
func (t *Tracker) Down(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.r.Registered {
		t.r.Since = time.Now()
	}
	t.r.Registered = false
	if err != nil {
		t.r.Error = err.Error()
	}
}

// Status returns the registration's state.
func (t *Tracker) Status() resolver.Registration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.r
}
