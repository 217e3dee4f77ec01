package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	grpcresolver "google.golang.org/grpc/resolver"
)

// Source translates one registry into endpoint sets. A backend (etcd,
// Consul, DNS SRV) implements it; [NewBuilder] turns it into a gRPC resolver
// builder that owns everything else: the goroutine, the last known
// endpoints, error reporting, metrics.
type Source interface {
	// Watch watches the service t names and reports what it learns to u
	// until ctx ends. The core calls it in a goroutine it owns, once per
	// resolver; Watch must return soon after ctx ends.
	//
	// Watch is expected to retry on its own (with [Backoff]) and to report
	// each failure with u.ReportError. If it returns before ctx ends, the
	// core reports the returned error and calls Watch again after a backoff.
	Watch(ctx context.Context, t Target, u Updater) error
}

// Updater receives what a [Source] learns. Its methods are safe for
// concurrent use; each call that changes the endpoint set results in at most
// one state pushed to gRPC, and a call that changes nothing pushes nothing.
type Updater interface {
	// Replace reports the complete set of the service's instances, keyed by
	// an instance key unique within the source (an etcd key, a Consul
	// service ID, an SRV target:port). An empty map means the service has
	// no instances. The core diffs it against the current set; it does not
	// keep m.
	Replace(m map[string]Endpoint)
	// Apply applies changes, in order, to the current set as one update.
	// Apply with no changes reports that the source is in sync with the
	// registry again without news (e.g. an etcd progress notification),
	// which clears the staleness. The first Replace or Apply is the
	// source's first answer: it is handed to gRPC even if empty, so a source
	// must Apply only after it knows the complete set.
	Apply(changes ...Change)
	// Invalid reports an instance the source could not decode. It is
	// logged and counted; it does not change the endpoint set (the
	// instance's previous endpoint, if any, is kept only if the source
	// does not also Delete it).
	Invalid(key string, err error)
	// ReportError reports that the registry cannot be read or watched. The
	// last known endpoints are kept (see [WithMaxStaleness]). Until the
	// first answer, the error reaches gRPC, and RPCs fail with it.
	ReportError(err error)
	// ResolveNow returns a channel that receives a value when gRPC asks
	// for a re-resolution (after connection failures). Sources that poll
	// (DNS) should poll again; watching sources may ignore it.
	ResolveNow() <-chan struct{}
}

// Change is one instance added, changed or removed.
type Change struct {
	// Key identifies the instance within the source.
	Key string
	// Endpoint is the instance's endpoint; ignored when Delete is set.
	Endpoint Endpoint
	// Delete removes the instance.
	Delete bool
}

// Target is a parsed dial target such as "etcd:///addsvc".
type Target struct {
	// Scheme is the URL scheme ("etcd").
	Scheme string
	// Authority is the optional authority ("etcd://authority/addsvc");
	// grpckit's backends ignore it.
	Authority string
	// Service is the service name, the path without its leading slash.
	Service string
	// Query holds the target's query parameters, for backend options.
	Query url.Values
}

// ErrBadTarget is returned (wrapped) for a target grpckit cannot resolve.
var ErrBadTarget = errors.New("resolver: bad target")

// MaxServiceLen is the longest service name [ParseTarget] accepts.
const MaxServiceLen = 253

// ParseTarget extracts the service name from a gRPC target. The service is
// the path, without the leading slash: 1 to [MaxServiceLen] characters among
// letters, digits, '.', '-' and '_' (a '/' would let one service's key prefix
// cover another's).
func ParseTarget(t grpcresolver.Target) (Target, error) {
	svc := t.Endpoint()
	if err := ValidateService(svc); err != nil {
		return Target{}, err
	}
	return Target{
		Scheme:    t.URL.Scheme,
		Authority: t.URL.Host,
		Service:   svc,
		Query:     t.URL.Query(),
	}, nil
}

// ValidateService reports whether name is a valid service name (see
// [ParseTarget]); registrars use it too.
func ValidateService(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty service name", ErrBadTarget)
	}
	if len(name) > MaxServiceLen {
		return fmt.Errorf("%w: service name longer than %d bytes", ErrBadTarget, MaxServiceLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return fmt.Errorf("%w: service name %q has invalid character %q", ErrBadTarget, name, c)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: service name %q", ErrBadTarget, name)
	}
	return nil
}
