package server

import (
	"context"
	"slices"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/grpckit/grpckit/interceptors/ratelimit"
	"github.com/grpckit/grpckit/internal/adminstate"
	"github.com/grpckit/grpckit/internal/chain"
	"github.com/grpckit/grpckit/resolver"
)

// namedLimiter is a limiter the server installed, for the admin page.
type namedLimiter struct {
	name string
	l    *ratelimit.Limiter
}

// registrationStatus is what a registrar implements to show its state on
// the admin page (the etcd and Consul registrars do).
type registrationStatus interface {
	Status() resolver.Registration
}

// adminState returns the server's state for the admin page.
func (s *Server) adminState() adminstate.Server {
	st := adminstate.Server{ID: s.id, Services: []adminstate.Service{}, Registrations: []resolver.Registration{},
		Limiters: []adminstate.Limiter{}, Calls: s.activity.Calls()}
	if a := s.AdminAddr(); a != nil {
		st.Admin = a.String()
	}
	s.mu.Lock()
	st.Addresses = slices.Clone(s.addrs)
	services := slices.Clone(s.services)
	closed := s.closed
	s.mu.Unlock()
	if st.Addresses == nil {
		st.Addresses = []string{}
	}
	st.Status = s.healthOf("")
	if closed {
		st.Status = "STOPPING"
	}
	for _, name := range services {
		st.Services = append(st.Services, adminstate.Service{Name: name, Status: s.healthOf(name)})
	}
	if r, ok := s.cfg.registrar.(registrationStatus); ok {
		st.Registrations = append(st.Registrations, r.Status())
	}
	for _, nl := range s.limiters {
		rate, conc := nl.l.Rejected()
		st.Limiters = append(st.Limiters, adminstate.Limiter{Name: nl.name, RejectedRate: rate, RejectedConcurrency: conc,
			InFlight: nl.l.InFlight(), Keys: nl.l.Keys()})
	}
	return st
}

// healthOf returns the health status of service ("" for the server).
func (s *Server) healthOf(service string) string {
	resp, err := s.health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_NOT_SERVING.String()
	}
	return resp.GetStatus().String()
}

// activityStage counts the server's unary calls and keeps its recent
// failures for the admin page.
func (s *Server) activityStage() chain.Stage {
	a := &s.activity
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, next chain.Next) (any, error) {
		a.Begin()
		resp, err := next(ctx, req, info, handler)
		if err != nil {
			a.End(info.FullMethod, err, func() string { return peerOf(ctx) })
		} else {
			a.End(info.FullMethod, nil, nil)
		}
		return resp, err
	}
}

// activityStream does the same for streams.
func (s *Server) activityStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	s.activity.Begin()
	err := handler(srv, ss)
	s.activity.End(info.FullMethod, err, func() string { return peerOf(ss.Context()) })
	return err
}

// peerOf returns the address of the call's peer.
func peerOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// adminSource returns the server's entry among the process's live servers.
func (s *Server) adminSource() *adminstate.ServerSource {
	src := &adminstate.ServerSource{State: s.adminState}
	if r := s.cfg.common.Registry; r != nil {
		src.Registry = r
	}
	return src
}
