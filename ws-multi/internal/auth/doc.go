// This file is duplicated from ws-single (internal/auth/doc.go) on purpose: the variants
// share token verification and channel permissions.

// Package auth verifies a client's JWT and says which channels it may hold.
//
// A token is verified with golang-jwt/jwt/v5 against a key set chosen by the server's
// configuration, never by the token: HMAC algorithms (HS*) only ever against the shared secret
// (WS_JWT_HMAC_SECRET), the others only against the JWK Set of WS_JWT_JWKS_URL (through
// MicahParks/keyfunc/v3, which refreshes it periodically and on an unknown key id, at most
// once per 10 s). The token's alg must be one of WS_JWT_ALGS; issuer, audience, expiry and
// subject are always required and checked. So a public RSA key can never be used as an HMAC
// secret (the "HS/RS confusion"), and "none" is never accepted.
//
// Verification runs on the goroutine of the connection that sent the token (its reader, or
// the HTTP handler for a token in Sec-WebSocket-Protocol), never on a hub goroutine. Its wait
// for the JWK Set is bounded by WS_JWT_JWKS_TIMEOUT.
//
// Permissions are Patterns: an exact channel, "<topic>:*" (the whole topic, and the only way
// to allow the wildcard channel itself) or "<topic>:<prefix>*". No regular expressions: a
// check scans a token's few patterns, or looks a long list up in a map.
package auth
