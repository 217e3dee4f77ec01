// Package retry retries failed unary calls of idempotent methods, with
// exponential backoff and jitter, within the call's deadline and a retry
// budget.
//
// Only methods named with [WithMethods] are retried: retrying a call that
// is not idempotent can apply it twice. Each group of methods has its own
// [Policy] (attempts, backoff, retriable codes). The default retriable code
// is Unavailable alone: the server did not process the call. Not
// ResourceExhausted (the server asked for less load: retrying adds load),
// not DeadlineExceeded (the call's budget is spent), not Internal or
// Unknown (the call may have run).
//
// # Budget
//
// Retries spend tokens from a budget that every eligible call fills by the
// ratio set with [WithBudget] (default 10%), plus a small floor of retries
// per second so that a client with little traffic can still retry. During
// an outage, retries add at most that fraction to the load (plus the
// floor) instead of multiplying it by the number of attempts. The balance
// is capped at 1000 calls' worth, so a long quiet period does not store a
// burst of retries.
//
// # Breakers and deadlines
//
// A call rejected by package breaker (errors.Is(err, breaker.ErrRejected))
// is never retried: the breaker below the retry layer judges every attempt,
// and an open breaker ends the retries. Backoff waits on a timer in a
// select with the context; if the next attempt could not start before the
// call's deadline, the last error is returned at once. All attempts share
// the caller's context and deadline, which grpc-go sends to the server.
//
// # Streams
//
// Streams are not retried, so there is no StreamClientInterceptor: a
// stream's messages would have to be buffered and replayed, and a stream
// that failed after some responses were delivered cannot be retried
// transparently at all. grpc-go itself already retries, transparently, a
// stream (or call) that never reached the server.
//
// go-grpc-middleware's retry interceptor is not used: it has no retry
// budget, does not know breaker rejections, and retries by call option
// rather than by a per-method idempotency list.
package retry
