// This file is duplicated from ws-single (internal/auth/verify.go) on purpose: the variants
// share token verification and channel permissions.

package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// unknownKIDRefresh is how often a token with a key id the JWK Set lacks may trigger a
// refetch: a rotation is picked up at once, a stream of made-up kids costs one fetch per 10 s.
const unknownKIDRefresh = 10 * time.Second

// hmacAlgs are the algorithms verified with the shared secret; every other allowed algorithm
// is verified with the JWK Set.
var hmacAlgs = []string{"HS256", "HS384", "HS512"}

// Algs are the algorithms WS_JWT_ALGS may name.
var Algs = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA"}

// IsHMAC reports whether alg is verified with the shared secret.
func IsHMAC(alg string) bool { return slices.Contains(hmacAlgs, alg) }

// Config is what a Verifier checks tokens against.
type Config struct {
	// HMACSecret verifies HS* tokens (WS_JWT_HMAC_SECRET); nil: none is accepted.
	HMACSecret []byte
	// JWKSURL is the JWK Set that verifies every other algorithm (WS_JWT_JWKS_URL); empty:
	// none is accepted.
	JWKSURL string
	// JWKSRefresh is how often the JWK Set is refetched (WS_JWT_JWKS_REFRESH).
	JWKSRefresh time.Duration
	// JWKSTimeout bounds one fetch of the JWK Set and a verification's wait for it
	// (WS_JWT_JWKS_TIMEOUT).
	JWKSTimeout time.Duration
	// Issuer and Audience must be the token's iss and one of its aud (WS_JWT_ISSUER,
	// WS_JWT_AUDIENCE).
	Issuer, Audience string
	// Algs are the accepted alg values (WS_JWT_ALGS).
	Algs []string
	// Leeway is the clock skew allowed on exp, nbf and iat (WS_JWT_LEEWAY).
	Leeway time.Duration
	// OnJWKSError is told when a background refresh of the JWK Set fails; nil ignores it.
	OnJWKSError func(error)
	// HTTPClient fetches the JWK Set; nil uses a plain client.
	HTTPClient *http.Client
}

// Grant is what a valid token allows.
type Grant struct {
	Subject string
	Expires time.Time
	// Allow are the channels of the token's ws.subscribe.
	Allow Patterns
	// MaxSubscriptions is the token's ws.max_subscriptions; 0 when it sets none.
	MaxSubscriptions int
}

// Verifier checks tokens. Safe for concurrent use.
type Verifier struct {
	cfg    Config
	jwks   keyfunc.Keyfunc // nil without a JWK Set
	parser *jwt.Parser
}

// New returns a verifier for cfg. With a JWK Set it fetches the set once (waiting at most
// JWKSTimeout; a failure is not an error: tokens then fail with keys_unavailable until a
// refetch succeeds) and refetches it in the background until ctx ends.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("auth: issuer and audience are required")
	}
	if len(cfg.Algs) == 0 {
		return nil, errors.New("auth: no algorithm allowed")
	}
	for _, alg := range cfg.Algs {
		switch {
		case !slices.Contains(Algs, alg):
			return nil, fmt.Errorf("auth: algorithm %q is not supported", alg)
		case IsHMAC(alg) && len(cfg.HMACSecret) == 0:
			return nil, fmt.Errorf("auth: algorithm %s needs an HMAC secret", alg)
		case !IsHMAC(alg) && cfg.JWKSURL == "":
			return nil, fmt.Errorf("auth: algorithm %s needs a JWK Set URL", alg)
		}
	}
	v := &Verifier{cfg: cfg, parser: jwt.NewParser(
		jwt.WithValidMethods(cfg.Algs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
	)}
	if cfg.JWKSURL != "" {
		if cfg.JWKSRefresh <= 0 || cfg.JWKSTimeout <= 0 {
			return nil, errors.New("auth: JWK Set refresh and timeout must be positive")
		}
		onErr := cfg.OnJWKSError
		if onErr == nil {
			onErr = func(error) {}
		}
		k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client:            cfg.HTTPClient,
			HTTPTimeout:       cfg.JWKSTimeout,
			RefreshInterval:   cfg.JWKSRefresh,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKIDRefresh), 1),
			// A verification's context (JWKSTimeout) bounds the wait; this only caps it.
			RateLimitWaitMax: cfg.JWKSTimeout,
			RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
				return func(_ context.Context, err error) { onErr(err) }
			},
		})
		if err != nil {
			return nil, fmt.Errorf("auth: JWK Set %s: %w", cfg.JWKSURL, err)
		}
		// Only signing keys verify: a JWK marked "use":"enc" is not one (RFC 7517 §4.2). A
		// key without "use" is accepted, as most sets leave it out.
		k, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: k.Storage(), UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
		if err != nil {
			return nil, fmt.Errorf("auth: JWK Set %s: %w", cfg.JWKSURL, err)
		}
		v.jwks = k
	}
	return v, nil
}

// claims are a token's claims: the registered ones and the ws object.
type claims struct {
	jwt.RegisteredClaims
	WS *struct {
		Subscribe        []string `json:"subscribe"`
		MaxSubscriptions int      `json:"max_subscriptions"`
	} `json:"ws,omitempty"`
}

// Verify checks token and returns what it grants, or a *Failure. A JWK Set wait is bounded
// by ctx and by WS_JWT_JWKS_TIMEOUT.
func (v *Verifier) Verify(ctx context.Context, token string) (*Grant, error) {
	if v.jwks != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.cfg.JWKSTimeout)
		defer cancel()
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(token, &c, v.keyfunc(ctx))
	if err != nil {
		f := v.classify(tok, err)
		if f.Expired() {
			// Expired is only reported for a good signature and otherwise good registered
			// claims; one that is also wrong in its own claims is invalid (see classify).
			if _, bad := c.grant(); bad != nil {
				bad.Err = err
				f = bad
			}
		}
		if signed(f.Reason) {
			f.Subject = c.Subject // verified: the audit log may trust it
		}
		return nil, f
	}
	g, bad := c.grant()
	if bad != nil {
		return nil, bad
	}
	return g, nil
}

// grant checks the claims golang-jwt does not (sub, ws) and returns what they allow.
func (c *claims) grant() (*Grant, *Failure) {
	g := &Grant{Subject: c.Subject}
	if c.ExpiresAt != nil {
		g.Expires = c.ExpiresAt.Time
	}
	if g.Subject == "" {
		return nil, &Failure{Reason: ReasonClaims, Message: "token has no sub"}
	}
	if c.WS != nil {
		if c.WS.MaxSubscriptions < 0 {
			return nil, &Failure{Reason: ReasonClaims, Message: "ws.max_subscriptions must not be negative", Subject: c.Subject}
		}
		g.MaxSubscriptions = c.WS.MaxSubscriptions
		var err error
		if g.Allow, err = ParsePatterns(c.WS.Subscribe); err != nil {
			return nil, &Failure{Reason: ReasonClaims, Message: "ws.subscribe: " + err.Error(), Subject: c.Subject}
		}
	}
	return g, nil
}

// keyfunc picks the key by the configured key sets: HS* only ever the secret, anything else
// only the JWK Set (which also refuses a JWK whose own alg differs from the token's). The
// parser has already refused an alg outside WS_JWT_ALGS.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if IsHMAC(t.Method.Alg()) {
			if len(v.cfg.HMACSecret) == 0 {
				return nil, errNoKeySet
			}
			return v.cfg.HMACSecret, nil
		}
		if v.jwks == nil {
			return nil, errNoKeySet
		}
		key, err := v.jwks.KeyfuncCtx(ctx)(t)
		if set, ok := key.(jwt.VerificationKeySet); ok && err == nil && len(set.Keys) == 0 {
			// A token without kid, and no key of the set has its alg (or the set is empty).
			return nil, errNoKey
		}
		return key, err
	}
}

var (
	errNoKeySet = errors.New("auth: no key set for this algorithm")
	errNoKey    = errors.New("auth: no key of the JWK Set fits the token")
)

// haveKeys reports whether the JWK Set has been read and holds a key: if not, a key the
// token needs is unavailable rather than unknown.
func (v *Verifier) haveKeys() bool {
	// The storage is in memory: reading it does not wait.
	keys, err := v.jwks.Storage().KeyReadAll(context.Background())
	return err == nil && len(keys) > 0
}

// signed reports whether a failure with reason came after the signature verified: only then
// is the token's sub the issuer's and not whatever an attacker wrote.
func signed(reason string) bool {
	switch reason {
	case ReasonExpired, ReasonNotYetValid, ReasonIssuer, ReasonAudience, ReasonClaims:
		return true
	}
	return false
}

// kidNotRead is how keyfunc/v3 words a kid its storage could not produce: not in the set even
// after a refetch, or the refetch's rate limit would outlast the wait (an error that is
// neither jwkset.ErrKeyNotFound nor a context error).
const kidNotRead = "could not read JWK from storage"

// classify maps the parser's error to a Failure. A token that is expired and also wrong in
// another way gets the other reason: token_expired invites a refresh that would not help.
func (v *Verifier) classify(tok *jwt.Token, err error) *Failure {
	fail := func(reason, msg string) *Failure { return &Failure{Reason: reason, Message: msg, Err: err} }
	algOK := tok != nil && tok.Method != nil && slices.Contains(v.cfg.Algs, tok.Method.Alg())
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ReasonMalformed, "token is malformed")
	case !algOK:
		return fail(ReasonAlgorithm, "token algorithm is not accepted")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		switch {
		case errors.Is(err, errNoKeySet):
			return fail(ReasonAlgorithm, "token algorithm is not accepted")
		case isTimeout(err):
			return fail(ReasonKeysUnavailable, "token keys are unavailable, try again")
		case errors.Is(err, jwkset.ErrKeyNotFound), strings.Contains(err.Error(), kidNotRead), errors.Is(err, errNoKey):
			// Not found after a refetch, or a refetch not allowed yet (unknownKIDRefresh);
			// with no key at all, the set has not been read (New).
			if !v.haveKeys() {
				return fail(ReasonKeysUnavailable, "token keys are unavailable, try again")
			}
			if errors.Is(err, errNoKey) {
				return fail(ReasonUnknownKey, "no key of the key set fits the token")
			}
			return fail(ReasonUnknownKey, "token key id is not in the key set")
		case errors.Is(err, keyfunc.ErrKeyfunc):
			return fail(ReasonSignature, "token key does not match its algorithm")
		}
		return fail(ReasonKeysUnavailable, "token keys are unavailable, try again")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fail(ReasonSignature, "token signature is invalid")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(ReasonIssuer, "token issuer is not accepted")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fail(ReasonAudience, "token audience is not accepted")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fail(ReasonNotYetValid, "token is not valid yet")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(ReasonClaims, "token lacks a required claim ("+missingClaim(err)+")")
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ReasonExpired, "token has expired")
	}
	return fail(ReasonClaims, "token claims are invalid")
}

// missingClaim names the first claim golang-jwt reports missing (exp, iss, aud, ...): its
// text is "token is missing required claim: exp claim is required".
func missingClaim(err error) string {
	msg := err.Error()
	if before, _, ok := strings.Cut(msg, " claim is required"); ok {
		return before[strings.LastIndexAny(before, " :")+1:]
	}
	return "exp, iss or aud"
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
