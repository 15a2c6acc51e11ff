// Package token mints the JSON Web Tokens of the auth contract (issue 15): `loadtest token`
// prints development tokens, and the conformance suite (internal/conform) mints valid and
// deliberately broken ones with the same code.
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretBytes is the shortest HMAC secret the servers accept (WS_JWT_HMAC_SECRET).
const MinSecretBytes = 32

// Claims are the claims of one token. A zero time or an empty string leaves its claim out,
// so that tests can mint tokens the contract calls invalid (no exp, no sub).
type Claims struct {
	// Issuer is iss; the servers compare it with WS_JWT_ISSUER.
	Issuer string
	// Audience is aud, a single string; the servers look for WS_JWT_AUDIENCE in it.
	Audience string
	// Subject is sub; the contract requires it non-empty.
	Subject string
	// IssuedAt is iat, NotBefore nbf, ExpiresAt exp (the contract requires exp). They are
	// written as whole Unix seconds, rounded down.
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// Channels are the patterns of ws.subscribe: an exact channel, "<topic>:*" or
	// "<topic>:<prefix>*" (see ValidatePattern). Mint writes them as given.
	Channels []string
	// MaxSubscriptions is ws.max_subscriptions; 0 leaves it out. The ws claim is left out
	// when Channels is nil and MaxSubscriptions is 0.
	MaxSubscriptions int
}

// Signer is how a token is signed.
type Signer struct {
	// Alg is the JWS alg: HS256/384/512 (Key a []byte secret), RS256/384/512 and
	// PS256/384/512 (*rsa.PrivateKey), ES256/384/512 (*ecdsa.PrivateKey), EdDSA
	// (ed25519.PrivateKey), or "none" (no key, no signature).
	Alg string
	// Key is the signing key for Alg.
	Key any
	// KeyID is the kid header; empty leaves it out.
	KeyID string
}

// ErrUnknownAlg reports an alg jwt/v5 cannot sign with.
var ErrUnknownAlg = errors.New("unknown alg")

// Mint signs c with s and returns the compact token. It checks nothing of c: Validate does.
func Mint(c Claims, s Signer) (string, error) {
	var method jwt.SigningMethod
	key := s.Key
	if s.Alg == jwt.SigningMethodNone.Alg() {
		method, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	} else if method = jwt.GetSigningMethod(s.Alg); method == nil {
		return "", fmt.Errorf("token: %w %q", ErrUnknownAlg, s.Alg)
	}
	t := jwt.NewWithClaims(method, c.mapClaims())
	if s.KeyID != "" {
		t.Header["kid"] = s.KeyID
	}
	out, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("token: sign %s: %w", s.Alg, err)
	}
	return out, nil
}

// mapClaims spells the claims out, so that aud stays a single string (jwt/v5's
// RegisteredClaims writes an array by default) and absent claims stay absent.
func (c Claims) mapClaims() jwt.MapClaims {
	m := jwt.MapClaims{}
	set := func(name, v string) {
		if v != "" {
			m[name] = v
		}
	}
	set("iss", c.Issuer)
	set("aud", c.Audience)
	set("sub", c.Subject)
	setTime := func(name string, t time.Time) {
		if !t.IsZero() {
			m[name] = t.Unix()
		}
	}
	setTime("iat", c.IssuedAt)
	setTime("nbf", c.NotBefore)
	setTime("exp", c.ExpiresAt)
	if c.Channels != nil || c.MaxSubscriptions != 0 {
		ws := map[string]any{}
		if c.Channels != nil {
			ws["subscribe"] = c.Channels
		}
		if c.MaxSubscriptions != 0 {
			ws["max_subscriptions"] = c.MaxSubscriptions
		}
		m["ws"] = ws
	}
	return m
}

// Validate reports the first claim that makes c an invalid token under the contract:
// an empty iss, aud or sub, no exp, a negative max_subscriptions, a bad pattern.
func (c Claims) Validate() error {
	switch {
	case c.Issuer == "":
		return errors.New("iss: empty")
	case c.Audience == "":
		return errors.New("aud: empty")
	case c.Subject == "":
		return errors.New("sub: empty")
	case c.ExpiresAt.IsZero():
		return errors.New("exp: missing")
	case c.MaxSubscriptions < 0:
		return fmt.Errorf("ws.max_subscriptions %d: must be 0 (none) or more", c.MaxSubscriptions)
	}
	for _, p := range c.Channels {
		if err := ValidatePattern(p); err != nil {
			return fmt.Errorf("ws.subscribe: %w", err)
		}
	}
	return nil
}
