// This file is duplicated from ws-single (internal/auth/errors.go) on purpose: the variants
// share token verification and channel permissions.

package auth

import "errors"

// Failure reasons: the label values of ws_auth_failures_total and the "reason" of the audit
// log, one per way a token is refused.
const (
	ReasonMalformed       = "malformed"        // not a JWT, or claims of the wrong type
	ReasonAlgorithm       = "algorithm"        // alg not in WS_JWT_ALGS (none, HS/RS confusion)
	ReasonSignature       = "signature"        // the signature does not verify
	ReasonUnknownKey      = "unknown_key"      // no key of the JWK Set has the token's kid
	ReasonKeysUnavailable = "keys_unavailable" // the JWK Set could not be read in time
	ReasonExpired         = "expired"          // exp has passed
	ReasonNotYetValid     = "not_yet_valid"    // nbf or iat in the future
	ReasonIssuer          = "issuer"           // iss is not WS_JWT_ISSUER
	ReasonAudience        = "audience"         // aud does not hold WS_JWT_AUDIENCE
	ReasonClaims          = "claims"           // exp or sub missing, bad ws claims
)

// Reasons are every failure reason, in a fixed order (metrics.Labels.AuthFailures).
var Reasons = []string{ReasonMalformed, ReasonAlgorithm, ReasonSignature, ReasonUnknownKey,
	ReasonKeysUnavailable, ReasonExpired, ReasonNotYetValid, ReasonIssuer, ReasonAudience, ReasonClaims}

// Failure is a refused token. Message is safe to send to the client and to log: it never
// holds the token.
type Failure struct {
	Reason  string // one of Reasons
	Message string
	Subject string // the token's sub when it could be read (for the audit log); untrusted
	Err     error  // the library's error, for the log
}

// Error implements error.
func (f *Failure) Error() string { return "auth: " + f.Reason + ": " + f.Message }

// Unwrap returns the library's error.
func (f *Failure) Unwrap() error { return f.Err }

// Expired reports whether the token was refused only because it expired: the client should
// get a new one (error code token_expired, not invalid_token).
func (f *Failure) Expired() bool { return f.Reason == ReasonExpired }

// AsFailure returns err's *Failure, or a malformed one for any other error.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return &Failure{Reason: ReasonMalformed, Message: "token is not valid", Err: err}
}
