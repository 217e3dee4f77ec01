package server

// installObservability installs logging, metrics and tracing.
func (s *Server) installObservability(b *builtins) {}
