// Package hedge sends hedged attempts of unary calls to idempotent
// methods: when the first attempt has not answered after a delay, a second
// one goes to another endpoint, the first answer wins and the other
// attempts are cancelled (Dean and Barroso, "The Tail at Scale"; brpc's
// backup requests; gRPC's hedging policy, A6).
//
// Only methods named with [WithMethods] are hedged: a hedged call may run
// on several servers. Replies must be proto messages (each hedge gets a
// new one of the reply's type); calls with other replies are not hedged. The delay is fixed ([WithDelay]) or a percentile of
// the method's recent latency ([WithPercentile], the default: the 95th,
// within [1 ms, 1 s]); up to [WithMaxAttempts] attempts are made, each a
// delay after the one before.
//
// # Budget
//
// Hedges spend tokens from a budget that every hedged method's call fills
// by a ratio ([WithBudget], default 10%) plus a floor of hedges per second,
// with the semantics of package retry's budget: under an overload that
// slows every backend, hedging adds at most that share to the load
// instead of doubling it. A hedge the budget refuses is not sent, and
// grpckit_hedge_budget_exhausted_total counts it. The budget is the
// Hedger's own; it is not shared with package retry's.
//
// # Endpoints
//
// A hedge is sent to an endpoint none of the call's earlier attempts went
// to, when grpckit's balancers (balancer/p2c, balancer/wrr) pick for the
// connection and another usable endpoint is ready: each attempt's context
// carries a hint in which the picker records its choice and the next
// attempts find the endpoints to avoid. With other balancers hedges go
// wherever the balancer sends them.
//
// # Errors, breakers and cancellation
//
// The first attempt to answer wins; its reply is the call's, and so are
// the header, trailer and peer the caller asked for with grpc.Header,
// grpc.Trailer and grpc.Peer. An attempt that fails with Unavailable (the
// server did not process it) leaves the others running; any other error
// (InvalidArgument, NotFound, DeadlineExceeded, ...) ends the call at once
// with that error and cancels the other attempts, as does the end of the
// caller's context. When every attempt failed, the call returns the first
// error a server gave. Hedging is not retrying: a first attempt that fails
// before the delay ends the call (package retry, outside, may retry it).
//
// Put the hedging interceptor outside the breaker (package client does):
// each attempt is then judged by the breaker, a hedge the breaker rejects
// (errors.Is(err, breaker.ErrRejected)) never wins and stops further
// hedges of the call, and an open breaker rejects the first attempt, so
// that no hedge is ever sent to it. The breaker counts the attempts this
// package cancels as neither success nor failure (Canceled is excluded).
//
// # Observability
//
// grpckit_hedge_sent_total{method} counts the hedges sent (a hedge the
// breaker rejected included), grpckit_hedge_won_total{method} the calls a
// hedge answered ([WithRegisterer]). [Hedger.Snapshot] returns the same
// counts per method, with each method's current delay and the budget's
// balance; package admin shows them per client. The span in the call's
// context, when recording, gets the events "hedge.sent" and "hedge.won"
// with the attribute hedge.attempt (1 for the first hedge).
//
// # Cost
//
// A call to a method that is not hedged costs one map lookup. A hedged
// call runs its first attempt on the caller's goroutine, with the caller's
// reply, and costs a timer, a context, a few small allocations and an
// atomic add to its method's counts; only a hedge costs a goroutine and a
// reply message. The interceptor returns
// once every attempt it started has ended.
//
// # Streams
//
// Streams are not hedged, so there is no StreamClientInterceptor: the
// messages a caller sends on a stream would have to be buffered and
// replayed to every attempt, and the responses of two attempts cannot be
// delivered to one reader without committing to one of them at the first
// message, which is where a slow backend is usually slow.
package hedge
