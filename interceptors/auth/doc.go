// Package auth authenticates and authorizes gRPC calls on the server, and
// sends bearer tokens from the client.
//
// # Authentication
//
// A [Checker] ([New]) authenticates a call by the bearer token in its
// "authorization" metadata (read with go-grpc-middleware's
// auth.AuthFromMD), verified by a [Verifier] such as [JWT], or, with
// [WithMTLS], by the client certificate the TLS transport verified
// (peer.FromContext and credentials.TLSInfo: its SPIFFE ID from a
// spiffe:// URI SAN, or its subject's distinguished name). A call that
// presents a token is judged by the token alone. The handler finds the
// caller with [FromContext].
//
// # Authorization
//
// [Rule]s name, per method ("/pkg.Service/Method"), per service
// ("/pkg.Service/*") or for all ("*"), the subjects, roles or scopes
// allowed to call; the most specific rule decides. Once rules are set, a
// method no rule matches is denied. Rules are checked by [New]. Health
// checks and reflection are public unless a rule names them.
//
// # Rejections
//
// A call without valid credentials fails with codes.Unauthenticated and
// the message "unauthenticated"; an authenticated caller that no rule
// allows gets codes.PermissionDenied and "permission denied". The messages
// are fixed and help no attacker: the reason goes to the logger
// ([WithLogger]) at level WARN, with the keys grpc.service, grpc.method,
// grpc.code, auth.reason, auth.subject (when known) and peer.address.
//
// Streams are checked once, when they start.
//
// # JWT
//
// [JWT] verifies JSON Web Tokens with github.com/golang-jwt/jwt/v5: a
// small, well-kept library whose parser takes an explicit allow-list of
// algorithms (jwt.WithValidMethods), so "none" and the HMAC algorithms
// never reach key lookup, and a key of one type is never used with an
// algorithm of another. It checks the signature, exp (required) and nbf
// and iat with a leeway, the issuer and the audience. Keys come from a
// fixed set ([StaticKeys]), a JWK Set file ([JWKSFile]) or a JWK Set URL
// ([JWKSURL]) fetched in the background by a goroutine the verifier owns
// (stop it with Close): every refresh interval, and when a token names an
// unknown kid, at most once per minimum refresh interval, so that a flood
// of made-up kids cannot make the server hammer the issuer. JWK Sets are
// parsed with the standard library: RSA (2048 bits or more), EC P-256 and
// P-384, and Ed25519 keys; other key types are skipped.
//
// # Clients
//
// [PerRPCCredentials], [UnaryClientInterceptor] and
// [StreamClientInterceptor] send "authorization: Bearer <token>" from a
// [TokenSource]; [Cached] keeps a token until shortly before it expires.
// They refuse to send a token over a connection without transport
// security unless [WithInsecureTransport] is given.
package auth
