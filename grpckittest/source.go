package grpckittest

import (
	"context"
	"maps"
	"sync"

	"github.com/grpckit/grpckit/resolver"
)

// Source is a resolver.Source that a test feeds by hand, as grpc-go's
// manual resolver is fed, but through grpckit's resolver core (endpoint
// attributes, last known endpoints kept on errors, metrics). Give it to
// resolver.NewBuilder and dial the builder's scheme:
//
//	src := &grpckittest.Source{}
//	b, err := resolver.NewBuilder("test", src)
//	conn := grpckittest.Dial(t, "test:///echo", client.WithDialOptions(grpc.WithResolvers(b)))
//	src.Replace(resolver.Endpoint{Addr: srv.Addr})
//
// Every resolver watching the source, whatever service its target names,
// receives what the test reports; one built later starts from the latest
// state (the endpoints, then the error, if any). The zero value has
// reported nothing and is ready to use; it is safe for concurrent use and
// must not be copied after first use.
type Source struct {
	mu       sync.Mutex
	set      map[string]resolver.Endpoint // by key: an endpoint's Addr for Replace
	answered bool                         // Replace or Update was called
	err      error                        // reported since the last Replace or Update
	watches  map[*watch]struct{}
}

type watch struct {
	target resolver.Target
	u      resolver.Updater
}

var _ resolver.Source = (*Source)(nil)

// Watch implements resolver.Source: it hands the latest state to u, then
// everything the test reports, until ctx ends.
func (s *Source) Watch(ctx context.Context, t resolver.Target, u resolver.Updater) error {
	w := &watch{target: t, u: u}
	s.mu.Lock()
	if s.watches == nil {
		s.watches = map[*watch]struct{}{}
	}
	s.watches[w] = struct{}{}
	if s.answered {
		u.Replace(s.set)
	}
	if s.err != nil {
		u.ReportError(s.err)
	}
	s.mu.Unlock()

	<-ctx.Done()
	s.mu.Lock()
	delete(s.watches, w)
	s.mu.Unlock()
	return nil
}

// Replace reports eps as the complete set of the service's instances,
// keyed by their Addr (of two with the same Addr, the last counts).
// Replace() with none reports a service without instances: calls fail
// with codes.Unavailable.
func (s *Source) Replace(eps ...resolver.Endpoint) {
	m := make(map[string]resolver.Endpoint, len(eps))
	for _, e := range eps {
		m[e.Addr] = e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set, s.answered, s.err = m, true, nil
	for w := range s.watches {
		w.u.Replace(m)
	}
}

// Update applies changes, in order, as one update: instances added,
// changed (Key is the Addr of an endpoint given to Replace) or deleted.
// Update() with none reports that the registry is reachable again without
// news, which ends the staleness ReportError started.
func (s *Source) Update(changes ...resolver.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := maps.Clone(s.set)
	if set == nil {
		set = map[string]resolver.Endpoint{}
	}
	for _, c := range changes {
		if c.Delete {
			delete(set, c.Key)
		} else {
			set[c.Key] = c.Endpoint
		}
	}
	s.set, s.answered, s.err = set, true, nil
	for w := range s.watches {
		w.u.Apply(changes...)
	}
}

// ReportError reports that the registry cannot be reached: before the
// first Replace or Update, calls fail with err (codes.Unavailable); after
// it, the resolvers keep the last endpoints (see
// resolver.WithMaxStaleness). A nil err is ignored.
func (s *Source) ReportError(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	for w := range s.watches {
		w.u.ReportError(err)
	}
}

// Watching returns the targets of the resolvers watching the source now,
// in no particular order: a test can wait for a client to start resolving,
// or for its resolver to be closed.
func (s *Source) Watching() []resolver.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]resolver.Target, 0, len(s.watches))
	for w := range s.watches {
		out = append(out, w.target)
	}
	return out
}
