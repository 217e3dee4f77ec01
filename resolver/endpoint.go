package resolver

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"

	"google.golang.org/grpc/attributes"
	grpcresolver "google.golang.org/grpc/resolver"
)

// Endpoint is one instance of a service as a registry describes it. Every
// grpckit resolver hands endpoints to the balancer with their Endpoint
// attached (see [WithEndpoint] and [FromAttributes]); grpckit's balancers read
// the weight from it.
type Endpoint struct {
	// Addr is the host:port to dial.
	Addr string `json:"address"`
	// Weight is the endpoint's relative share of traffic for weighted
	// balancers. 0 means the default weight, 1.
	Weight uint32 `json:"weight,omitempty"`
	// Zone is the endpoint's locality (availability zone, rack), if known.
	Zone string `json:"zone,omitempty"`
	// Version is the build or API version the endpoint runs, if known.
	Version string `json:"version,omitempty"`
	// Metadata holds anything else the registry carries (tags, meta).
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EffectiveWeight returns the weight a balancer should use: Weight, or 1
// when it is unset.
func (e Endpoint) EffectiveWeight() uint32 {
	if e.Weight == 0 {
		return 1
	}
	return e.Weight
}

// Equal reports whether two endpoints are the same in every field.
func (e Endpoint) Equal(o Endpoint) bool {
	return e.Addr == o.Addr && e.Weight == o.Weight && e.Zone == o.Zone &&
		e.Version == o.Version && maps.Equal(e.Metadata, o.Metadata)
}

type endpointKey struct{}

// attrValue wraps Endpoint so that attributes.Attributes can compare it.
type attrValue struct{ Endpoint }

func (a attrValue) Equal(o any) bool {
	b, ok := o.(attrValue)
	return ok && a.Endpoint.Equal(b.Endpoint)
}

// WithEndpoint returns attrs with e attached (attrs may be nil).
func WithEndpoint(attrs *attributes.Attributes, e Endpoint) *attributes.Attributes {
	if attrs == nil {
		return attributes.New(endpointKey{}, attrValue{e})
	}
	return attrs.WithValue(endpointKey{}, attrValue{e})
}

// FromAttributes returns the Endpoint attached by [WithEndpoint], if any.
func FromAttributes(attrs *attributes.Attributes) (Endpoint, bool) {
	if attrs == nil {
		return Endpoint{}, false
	}
	v, ok := attrs.Value(endpointKey{}).(attrValue)
	return v.Endpoint, ok
}

// ToGRPC converts e to a gRPC resolver endpoint with one address, carrying
// e in the endpoint's attributes, where balancers read it. The address itself
// carries no attributes, so a changed weight or metadata does not recreate
// the connection.
func ToGRPC(e Endpoint) grpcresolver.Endpoint {
	return grpcresolver.Endpoint{
		Addresses:  []grpcresolver.Address{{Addr: e.Addr}},
		Attributes: WithEndpoint(nil, e),
	}
}

// FromGRPC returns the Endpoint a grpckit resolver attached to ep, or one
// built from its first address when there is none (default weight).
func FromGRPC(ep grpcresolver.Endpoint) Endpoint {
	if e, ok := FromAttributes(ep.Attributes); ok {
		return e
	}
	if len(ep.Addresses) > 0 {
		return Endpoint{Addr: ep.Addresses[0].Addr}
	}
	return Endpoint{}
}

// ErrBadEndpoint is returned (wrapped) by [Endpoint.Validate].
var ErrBadEndpoint = errors.New("resolver: bad endpoint")

// Validate reports whether e can be dialled: Addr must be a host:port with a
// non-empty host and a numeric port.
func (e Endpoint) Validate() error {
	host, port, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrBadEndpoint, e.Addr, err)
	}
	if host == "" {
		return fmt.Errorf("%w: address %q has no host", ErrBadEndpoint, e.Addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%w: address %q has an invalid port", ErrBadEndpoint, e.Addr)
	}
	return nil
}
