// Package breaker stops a client from sending calls that are likely to
// fail: a circuit breaker per target and method ([New]), or Google SRE's
// adaptive throttling ([NewThrottle]), which degrades gracefully instead of
// flipping.
//
// A rejected call fails with codes.Unavailable and the message [Message]
// without any network traffic. The error matches [ErrRejected] with
// errors.Is, so that a retry layer can tell "the breaker refused" from
// "the server failed" and never retries the former (package retry does so).
//
// # Circuit breaker
//
// The breaker has github.com/sony/gobreaker/v2's state machine and speaks
// its types (gobreaker.State, gobreaker.Counts): closed until ReadyToTrip
// says so (default: [DefaultThreshold] consecutive failures), then open for
// Timeout, then half-open, where MaxRequests probes are let through; that
// many successes close it, one failure opens it again. gobreaker asks the
// caller to decide what is a failure (its IsSuccessful, and its exclusions,
// which count as neither and, in the half-open state, free the probe's
// slot); this package decides it so that the breaker judges the backend's
// health, not the caller's choices or the application's answers.
//
// # What counts
//
// Each finished call is a success, a failure or excluded (neither):
//
//   - OK is a success.
//   - Canceled is excluded: the caller gave up.
//   - DeadlineExceeded of a call that had less than [WithMinBudget]
//     (default [DefaultMinBudget], 1 s) before its deadline when it started
//     is excluded: a call whose deadline had already passed (never sent),
//     a call cut short by a tight deadline or by the last attempt of a
//     retry. The server inherits the caller's deadline, so this holds
//     whichever side noticed first. With a fair budget (or no deadline, so
//     that the server's own deadline expired) it counts: a backend that
//     does not answer in a fair budget is failing, and a hung backend would
//     otherwise never open the breaker.
//   - When the caller's own context has ended by the time the call fails
//     with any other code, the call is excluded: the caller cancelled it or
//     its deadline decided it.
//   - Otherwise (the caller's context still live), a code in the failure
//     set is a failure and any other code a success: the server answered.
//     The default failure set ([DefaultFailureCodes]) is Unavailable
//     (transport failures, a server going away, a server refusing work)
//     and DeadlineExceeded (with the budget rule above). Unknown,
//     Internal and DataLoss are not in it by default: a handler that
//     returns a plain Go error or panics is an application bug, and ten
//     seconds of Unavailable for every caller would turn one bad request
//     into an outage. ResourceExhausted is not in it either (it is also a
//     per-caller quota or an oversized message); the throttle adds it, as
//     Google's SRE book counts rejections for overload.
//     [WithFailureCodes] changes the set.
//   - A call that starts while the ClientConn has no ready connection (no
//     endpoints yet, every backend unreachable) and fails without reaching
//     a backend is excluded: gRPC fails it itself (at once, or at its
//     deadline with WaitForReady), and counting it would hold calls off for
//     the open timeout after the connection comes back. A call that starts
//     on a ready connection counts, also when the backend dies under it.
//     (The state is read when a call starts; only when it is not ready does
//     a unary call ask grpc.Peer whether it was sent to a backend, so the
//     common path costs nothing. A stream, judged when it opens, reads the
//     state again at its end instead.)
//
// The budget is read once when a call with a deadline starts (one clock
// read); the context is consulted only for a call that failed.
//
// It does not call gobreaker itself: gobreaker.CircuitBreaker.Execute takes
// a mutex twice and reads time.Now twice per call (164–206 ns on the
// reference machines), and its two-step API allocates a closure per call.
// Here the state and generation live in one atomic word: a call in the
// closed state takes no lock, reads no clock (unless an Interval is set)
// and allocates nothing; an open breaker reads the clock once. Transitions
// take a mutex. BenchmarkAdmit in this package measures admission plus
// completion through the interceptor beside BenchmarkTimeNow and gobreaker
// itself; on a shared 2-core machine (median of 8 interleaved runs): 26 ns,
// 0 allocations, 0.41× time.Now, against 163 ns for gobreaker's Execute and
// 214 ns and 1 allocation for its two-step API. The throttle: 51 ns, 0
// allocations, 0.94× time.Now. A call whose context has a deadline (every
// call through the client builder's default deadline) also reads the
// monotonic clock once for its budget: BenchmarkAdmitDeadline, 53 ns
// against 17 ns before the budget rule (median of 5 interleaved runs),
// still 0 allocations.
//
// Every transition is logged (slog, Info; Warn when opening) and, with
// [WithRegisterer], exported: grpckit_breaker_state{target,key} (0 closed,
// 1 half-open, 2 open), grpckit_breaker_transitions_total{target,key,from,to}
// and grpckit_breaker_rejected_total{target,key}.
//
// # Adaptive throttling
//
// [NewThrottle] implements the client-side throttling of Google's SRE book
// ("Handling Overload"): over a sliding window the client counts requests
// and accepts (calls whose code is not a failure) and rejects a new call
// locally with probability max(0, (requests − K·accepts) / (requests + 1)).
// A healthy backend is never throttled; a failing one sees its traffic
// shrink to about accepts·K, and recovers smoothly. An admitted call is
// counted when it completes, so calls in flight are not yet in the ratio.
//
// # Streams
//
// A stream is judged by its establishment: the breaker admits or rejects
// it, and an error from starting it counts as that error. What happens
// later on the stream is not counted, since a caller may abandon a stream
// without reading its final status, and a probe whose outcome never
// arrives would hold a half-open breaker forever.
package breaker
