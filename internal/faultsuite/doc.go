// Package faultsuite holds grpckit's fault suite, a test that proves what
// the README promises under load: servers run as separate OS processes (so
// SIGKILL and SIGSTOP are real), a client sends open-loop Poisson load
// through an embedded etcd (and, in a second group, DNS SRV from a
// miekg/dns server), and faults are injected one at a time: a server
// killed, frozen, restarted gracefully (rolling), etcd stopped and
// restarted, a backend that hangs, is 10× slower, returns errors or
// panics, and network faults between the client and one server (latency,
// a cut connection, a black hole) through an in-process TCP proxy.
//
// Each fault prints a row (calls attempted, failed by code, p50/p99/p99.9
// during and after the fault, time to recover) and asserts its budget.
//
//	go test -run TestFaults -v ./internal/faultsuite            # short mode, under 2 minutes
//	GRPCKIT_FAULTS=long go test -run TestFaults -v ./internal/faultsuite
//
// GRPCKIT_FAULTS_OUT=file also writes the table to file (CI prints it).
// The package has no API: it is its test.
package faultsuite
