package lbtest

import "github.com/grpckit/grpckit/internal/lbfake"

// FakeCC is a balancer.ClientConn that connects nothing (package
// internal/lbfake, shared with the bench module).
type FakeCC = lbfake.FakeCC

// FakeSubConn is a SubConn of FakeCC.
type FakeSubConn = lbfake.FakeSubConn
