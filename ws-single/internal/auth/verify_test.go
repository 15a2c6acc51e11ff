// This file is duplicated from ws-multi (internal/auth/verify_test.go) on purpose: the
// variants share token verification and channel permissions.

package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://id.example.test/"
	testAudience = "ws-poc"
	testLeeway   = 30 * time.Second
	testSubject  = "user-1"
)

// testSecret is a 32-byte HMAC secret (the contract's minimum).
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// validClaims are the claims of a valid token issued at now, as a map so that a case can
// delete or retype any of them.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": testSubject,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"ws": map[string]any{
			"subscribe":         []string{"trades:BTC*", "book:*"},
			"max_subscriptions": 5,
		},
	}
}

// mint signs claims with method and key; header entries (such as "kid") are added to the
// token's header.
func mint(t testing.TB, method jwt.SigningMethod, key any, claims jwt.Claims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// newHMACVerifier is a verifier of HS256 tokens signed with testSecret.
func newHMACVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := New(context.Background(), Config{
		HMACSecret: testSecret,
		Issuer:     testIssuer,
		Audience:   testAudience,
		Algs:       []string{"HS256"},
		Leeway:     testLeeway,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// checkFailure asserts that err is a *Failure with one of the reasons in want, that Expired
// is true only for ReasonExpired, and that nothing a client or a log sees holds the token.
func checkFailure(t *testing.T, token string, err error, want ...string) *Failure {
	t.Helper()
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("Verify error = %v (%T), want a *Failure", err, err)
	}
	if !slices.Contains(want, f.Reason) {
		t.Errorf("Reason = %q (%v), want one of %q", f.Reason, f.Err, want)
	}
	if !slices.Contains(Reasons, f.Reason) {
		t.Errorf("Reason %q is not one of Reasons", f.Reason)
	}
	if got, want := f.Expired(), f.Reason == ReasonExpired; got != want {
		t.Errorf("Expired() = %v for reason %q", got, f.Reason)
	}
	if f.Message == "" {
		t.Error("Message is empty")
	}
	checkNoToken(t, token, "Error()", f.Error())
	checkNoToken(t, token, "Message", f.Message)
	if f.Err != nil {
		checkNoToken(t, token, "Err", f.Err.Error())
	}
	return f
}

// checkNoToken asserts that text holds neither the token nor, when they are long enough to
// be recognised, any of its segments.
func checkNoToken(t *testing.T, token, what, text string) {
	t.Helper()
	if token != "" && strings.Contains(text, token) {
		t.Errorf("%s %q holds the token", what, text)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 16 && strings.Contains(text, seg) {
			t.Errorf("%s %q holds a segment of the token", what, text)
		}
	}
}

func TestVerifyHMAC(t *testing.T) {
	t.Parallel()
	v := newHMACVerifier(t)
	now := time.Now()
	exp := now.Add(time.Hour).Truncate(time.Second)
	wantAllow, err := ParsePatterns([]string{"trades:BTC*", "book:*"})
	if err != nil {
		t.Fatal(err)
	}
	valid := &Grant{Subject: testSubject, Expires: exp, Allow: wantAllow, MaxSubscriptions: 5}

	tests := []struct {
		name   string
		method jwt.SigningMethod   // default HS256
		key    any                 // default testSecret
		edit   func(jwt.MapClaims) // changes validClaims(now)
		raw    *string             // a literal token instead of a minted one
		want   *Grant              // a valid token's grant
		reason []string            // else, the acceptable failure reasons
		sub    string              // the failure's Subject, when it must be read
	}{
		{name: "valid", want: valid},
		{
			name: "valid without ws",
			edit: func(c jwt.MapClaims) { delete(c, "ws") },
			want: &Grant{Subject: testSubject, Expires: exp},
		},
		{
			name: "valid with ws null",
			edit: func(c jwt.MapClaims) { c["ws"] = nil },
			want: &Grant{Subject: testSubject, Expires: exp},
		},
		{
			name: "valid with empty ws",
			edit: func(c jwt.MapClaims) { c["ws"] = map[string]any{} },
			want: &Grant{Subject: testSubject, Expires: exp},
		},
		{
			name: "valid with audience list",
			edit: func(c jwt.MapClaims) { c["aud"] = []string{"other", testAudience} },
			want: valid,
		},
		{
			name: "valid without iat",
			edit: func(c jwt.MapClaims) { delete(c, "iat") },
			want: valid,
		},
		{
			name: "expired within leeway",
			edit: func(c jwt.MapClaims) {
				c["iat"] = now.Add(-time.Hour).Unix()
				c["exp"] = now.Add(-testLeeway / 3).Unix()
			},
			want: &Grant{Subject: testSubject, Expires: now.Add(-testLeeway / 3).Truncate(time.Second), Allow: wantAllow, MaxSubscriptions: 5},
		},
		{
			name: "nbf within leeway",
			edit: func(c jwt.MapClaims) { c["nbf"] = now.Add(testLeeway / 3).Unix() },
			want: valid,
		},
		{
			name: "iat within leeway",
			edit: func(c jwt.MapClaims) { c["iat"] = now.Add(testLeeway / 3).Unix() },
			want: valid,
		},
		{
			name: "max_subscriptions zero",
			edit: func(c jwt.MapClaims) {
				c["ws"] = map[string]any{"subscribe": []string{"a:b"}, "max_subscriptions": 0}
			},
			want: &Grant{Subject: testSubject, Expires: exp, Allow: mustPatterns(t, "a:b")},
		},
		{name: "wrong secret", key: []byte("another secret, also 32 bytes ok"), reason: []string{ReasonSignature}},
		{name: "alg none", method: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType, reason: []string{ReasonAlgorithm}},
		{name: "HS384 not allowed", method: jwt.SigningMethodHS384, reason: []string{ReasonAlgorithm}},
		{name: "HS512 not allowed", method: jwt.SigningMethodHS512, reason: []string{ReasonAlgorithm}},
		{name: "unknown alg", raw: ptr(withHeader(t, `{"alg":"XS256","typ":"JWT"}`, now)), reason: []string{ReasonAlgorithm}},
		{name: "alg not a string", raw: ptr(withHeader(t, `{"alg":256,"typ":"JWT"}`, now)), reason: []string{ReasonAlgorithm, ReasonMalformed}},
		{
			name: "expired",
			edit: func(c jwt.MapClaims) {
				c["iat"] = now.Add(-2 * time.Hour).Unix()
				c["exp"] = now.Add(-2 * testLeeway).Unix()
			},
			reason: []string{ReasonExpired},
			sub:    testSubject,
		},
		{
			name: "expired and wrong issuer",
			edit: func(c jwt.MapClaims) {
				c["exp"] = now.Add(-time.Hour).Unix()
				c["iss"] = "https://evil.example.test/"
			},
			reason: []string{ReasonIssuer},
		},
		{
			name: "expired and wrong audience",
			edit: func(c jwt.MapClaims) {
				c["exp"] = now.Add(-time.Hour).Unix()
				c["aud"] = "other"
			},
			reason: []string{ReasonAudience},
		},
		{
			name: "expired and missing iss",
			edit: func(c jwt.MapClaims) {
				c["exp"] = now.Add(-time.Hour).Unix()
				delete(c, "iss")
			},
			reason: []string{ReasonIssuer, ReasonClaims},
		},
		{
			name: "expired and missing sub",
			edit: func(c jwt.MapClaims) {
				c["exp"] = now.Add(-time.Hour).Unix()
				delete(c, "sub")
			},
			reason: []string{ReasonClaims},
		},
		{
			name: "expired and bad pattern",
			edit: func(c jwt.MapClaims) {
				c["exp"] = now.Add(-time.Hour).Unix()
				c["ws"] = map[string]any{"subscribe": []string{"trades*"}}
			},
			reason: []string{ReasonClaims},
		},
		{
			name: "expired and negative max_subscriptions",
			edit: func(c jwt.MapClaims) {
				c["exp"] = now.Add(-time.Hour).Unix()
				c["ws"] = map[string]any{"max_subscriptions": -1}
			},
			reason: []string{ReasonClaims},
		},
		{
			name:   "wrong issuer",
			edit:   func(c jwt.MapClaims) { c["iss"] = "https://evil.example.test/" },
			reason: []string{ReasonIssuer},
			sub:    testSubject,
		},
		{name: "missing issuer", edit: func(c jwt.MapClaims) { delete(c, "iss") }, reason: []string{ReasonIssuer, ReasonClaims}},
		{name: "empty issuer", edit: func(c jwt.MapClaims) { c["iss"] = "" }, reason: []string{ReasonIssuer, ReasonClaims}},
		{name: "wrong audience", edit: func(c jwt.MapClaims) { c["aud"] = "other" }, reason: []string{ReasonAudience}},
		{name: "wrong audience list", edit: func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} }, reason: []string{ReasonAudience}},
		{name: "missing audience", edit: func(c jwt.MapClaims) { delete(c, "aud") }, reason: []string{ReasonAudience, ReasonClaims}},
		{name: "missing exp", edit: func(c jwt.MapClaims) { delete(c, "exp") }, reason: []string{ReasonClaims}},
		{name: "missing sub", edit: func(c jwt.MapClaims) { delete(c, "sub") }, reason: []string{ReasonClaims}},
		{name: "empty sub", edit: func(c jwt.MapClaims) { c["sub"] = "" }, reason: []string{ReasonClaims}},
		{name: "nbf in the future", edit: func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }, reason: []string{ReasonNotYetValid}},
		{name: "iat in the future", edit: func(c jwt.MapClaims) { c["iat"] = now.Add(5 * time.Minute).Unix() }, reason: []string{ReasonNotYetValid}},
		{name: "empty string", raw: ptr(""), reason: []string{ReasonMalformed}},
		{name: "two segments", raw: ptr("a.b"), reason: []string{ReasonMalformed}},
		{name: "three garbage segments", raw: ptr("a.b.c"), reason: []string{ReasonMalformed}},
		{name: "four segments", raw: ptr("a.b.c.d"), reason: []string{ReasonMalformed}},
		{name: "words", raw: ptr("not a token at all"), reason: []string{ReasonMalformed}},
		{name: "header not JSON", raw: ptr(withHeader(t, `{"alg":`, now)), reason: []string{ReasonMalformed}},
		{
			name:   "ws.subscribe bad pattern",
			edit:   func(c jwt.MapClaims) { c["ws"] = map[string]any{"subscribe": []string{"trades:BTC", "trades:B*C"}} },
			reason: []string{ReasonClaims},
			sub:    testSubject,
		},
		{
			name:   "ws.subscribe too many",
			edit:   func(c jwt.MapClaims) { c["ws"] = map[string]any{"subscribe": make([]string, MaxPatterns+1)} },
			reason: []string{ReasonClaims},
		},
		{
			name:   "ws.max_subscriptions negative",
			edit:   func(c jwt.MapClaims) { c["ws"] = map[string]any{"max_subscriptions": -3} },
			reason: []string{ReasonClaims},
			sub:    testSubject,
		},
		{
			name:   "ws.subscribe a string",
			edit:   func(c jwt.MapClaims) { c["ws"] = map[string]any{"subscribe": "trades:*"} },
			reason: []string{ReasonMalformed, ReasonClaims},
		},
		{
			name:   "ws.subscribe numbers",
			edit:   func(c jwt.MapClaims) { c["ws"] = map[string]any{"subscribe": []int{1, 2}} },
			reason: []string{ReasonMalformed, ReasonClaims},
		},
		{
			name:   "ws.max_subscriptions a string",
			edit:   func(c jwt.MapClaims) { c["ws"] = map[string]any{"max_subscriptions": "5"} },
			reason: []string{ReasonMalformed, ReasonClaims},
		},
		{
			name:   "ws.max_subscriptions a fraction",
			edit:   func(c jwt.MapClaims) { c["ws"] = map[string]any{"max_subscriptions": 1.5} },
			reason: []string{ReasonMalformed, ReasonClaims},
		},
		{name: "ws a string", edit: func(c jwt.MapClaims) { c["ws"] = "trades:*" }, reason: []string{ReasonMalformed, ReasonClaims}},
		{name: "exp a string", edit: func(c jwt.MapClaims) { c["exp"] = "tomorrow" }, reason: []string{ReasonMalformed, ReasonClaims}},
		{name: "sub a number", edit: func(c jwt.MapClaims) { c["sub"] = 42 }, reason: []string{ReasonMalformed, ReasonClaims}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var token string
			if tt.raw != nil {
				token = *tt.raw
			} else {
				method, key := tt.method, tt.key
				if method == nil {
					method = jwt.SigningMethodHS256
				}
				if key == nil {
					key = testSecret
				}
				c := validClaims(now)
				if tt.edit != nil {
					tt.edit(c)
				}
				token = mint(t, method, key, c, nil)
			}
			g, err := v.Verify(t.Context(), token)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Verify = %v, want a grant", err)
				}
				checkGrant(t, g, tt.want)
				return
			}
			if g != nil {
				t.Errorf("Verify returned grant %+v with error %v", g, err)
			}
			f := checkFailure(t, token, err, tt.reason...)
			if tt.sub != "" && f.Subject != tt.sub {
				t.Errorf("Subject = %q, want %q", f.Subject, tt.sub)
			}
		})
	}
}

// TestVerifyMissingClaimMessage checks that the message names the claim that is missing.
func TestVerifyMissingClaimMessage(t *testing.T) {
	t.Parallel()
	v := newHMACVerifier(t)
	for _, claim := range []string{"exp", "iss", "aud"} {
		t.Run(claim, func(t *testing.T) {
			t.Parallel()
			c := validClaims(time.Now())
			delete(c, claim)
			_, err := v.Verify(t.Context(), mint(t, jwt.SigningMethodHS256, testSecret, c, nil))
			f := AsFailure(err)
			if f.Reason != ReasonClaims {
				t.Fatalf("Reason = %q, want %q: a missing claim is a claims failure", f.Reason, ReasonClaims)
			}
			if want := "(" + claim + ")"; !strings.Contains(f.Message, want) {
				t.Errorf("Message = %q, want it to name %s", f.Message, want)
			}
		})
	}
}

func checkGrant(t *testing.T, got, want *Grant) {
	t.Helper()
	if got == nil {
		t.Fatal("nil grant")
	}
	if got.Subject != want.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, want.Subject)
	}
	if !got.Expires.Equal(want.Expires) {
		t.Errorf("Expires = %v, want %v", got.Expires, want.Expires)
	}
	if got.MaxSubscriptions != want.MaxSubscriptions {
		t.Errorf("MaxSubscriptions = %d, want %d", got.MaxSubscriptions, want.MaxSubscriptions)
	}
	if !reflect.DeepEqual(got.Allow, want.Allow) {
		t.Errorf("Allow = %+v, want %+v", got.Allow, want.Allow)
	}
	for _, ch := range []string{"trades:BTC-USD", "book:x", "book:*", "a:b", "trades:*", "ticker:x"} {
		if g, w := got.Allow.Allows(ch), want.Allow.Allows(ch); g != w {
			t.Errorf("Allow.Allows(%q) = %v, want %v", ch, g, w)
		}
	}
}

func mustPatterns(t *testing.T, list ...string) Patterns {
	t.Helper()
	p, err := ParsePatterns(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// withHeader is a token with the given raw header, valid claims and a dummy signature.
func withHeader(t *testing.T, header string, now time.Time) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	body := mint(t, jwt.SigningMethodHS256, testSecret, validClaims(now), nil)
	parts := strings.Split(body, ".")
	return enc([]byte(header)) + "." + parts[1] + "." + parts[2]
}

// TestVerifyConcurrent verifies from many goroutines at once (for the race detector).
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	v := newHMACVerifier(t)
	good := mint(t, jwt.SigningMethodHS256, testSecret, validClaims(time.Now()), nil)
	bad := mint(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes ok"), validClaims(time.Now()), nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 50 {
				if i%2 == 0 {
					if _, err := v.Verify(context.Background(), good); err != nil {
						t.Errorf("valid token: %v", err)
						return
					}
				} else if _, err := v.Verify(context.Background(), bad); AsFailure(err).Reason != ReasonSignature {
					t.Errorf("bad token: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	ok := Config{HMACSecret: testSecret, Issuer: testIssuer, Audience: testAudience, Algs: []string{"HS256"}, Leeway: testLeeway}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{name: "missing issuer", edit: func(c *Config) { c.Issuer = "" }, wantErr: "issuer"},
		{name: "missing audience", edit: func(c *Config) { c.Audience = "" }, wantErr: "audience"},
		{name: "no algorithms", edit: func(c *Config) { c.Algs = nil }, wantErr: "no algorithm"},
		{name: "unknown algorithm", edit: func(c *Config) { c.Algs = []string{"HS256", "XS256"} }, wantErr: `"XS256"`},
		{name: "none", edit: func(c *Config) { c.Algs = []string{"none"} }, wantErr: `"none"`},
		{name: "lower case", edit: func(c *Config) { c.Algs = []string{"hs256"} }, wantErr: `"hs256"`},
		{name: "HS256 without secret", edit: func(c *Config) { c.HMACSecret = nil }, wantErr: "HS256 needs an HMAC secret"},
		{name: "HS512 without secret", edit: func(c *Config) { c.HMACSecret = []byte{}; c.Algs = []string{"HS512"} }, wantErr: "HS512 needs an HMAC secret"},
		{name: "RS256 without JWKS URL", edit: func(c *Config) { c.Algs = []string{"HS256", "RS256"} }, wantErr: "RS256 needs a JWK Set URL"},
		{name: "EdDSA without JWKS URL", edit: func(c *Config) { c.Algs = []string{"EdDSA"} }, wantErr: "EdDSA needs a JWK Set URL"},
		{
			name: "JWKS without refresh",
			edit: func(c *Config) {
				c.Algs, c.JWKSURL, c.JWKSTimeout = []string{"RS256"}, "http://127.0.0.1:1/jwks", time.Second
			},
			wantErr: "positive",
		},
		{
			name: "JWKS without timeout",
			edit: func(c *Config) {
				c.Algs, c.JWKSURL, c.JWKSRefresh = []string{"RS256"}, "http://127.0.0.1:1/jwks", time.Hour
			},
			wantErr: "positive",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			cfg.Algs = slices.Clone(ok.Algs)
			tt.edit(&cfg)
			v, err := New(t.Context(), cfg)
			if err == nil {
				t.Fatalf("New(%+v) = %v, nil; want an error", cfg, v)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New error = %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), string(testSecret)) {
				t.Errorf("New error %q holds the secret", err)
			}
		})
	}
}

func TestAsFailure(t *testing.T) {
	t.Parallel()
	own := &Failure{Reason: ReasonIssuer, Message: "token issuer is not accepted"}
	tests := []struct {
		name string
		err  error
		want *Failure // nil: a new malformed Failure
	}{
		{name: "failure", err: own, want: own},
		{name: "wrapped failure", err: fmt.Errorf("auth op: %w", own), want: own},
		{name: "other error", err: errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := AsFailure(tt.err)
			if tt.want != nil {
				if f != tt.want {
					t.Errorf("AsFailure = %+v, want %+v", f, tt.want)
				}
				return
			}
			if f.Reason != ReasonMalformed || !errors.Is(f, tt.err) || f.Message == "" {
				t.Errorf("AsFailure(%v) = %+v, want a malformed Failure wrapping it", tt.err, f)
			}
		})
	}
}

func TestFailureError(t *testing.T) {
	t.Parallel()
	inner := errors.New("library detail")
	f := &Failure{Reason: ReasonSignature, Message: "token signature is invalid", Err: inner}
	if got, want := f.Error(), "auth: signature: token signature is invalid"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(f, inner) {
		t.Error("Failure does not unwrap to its Err")
	}
	if f.Expired() {
		t.Error("a signature failure is Expired")
	}
	if !(&Failure{Reason: ReasonExpired}).Expired() {
		t.Error("an expired failure is not Expired")
	}
}

// TestReasons checks that Reasons are the contract's ws_auth_failures_total label values.
func TestReasons(t *testing.T) {
	t.Parallel()
	want := []string{"malformed", "algorithm", "signature", "unknown_key", "keys_unavailable",
		"expired", "not_yet_valid", "issuer", "audience", "claims"}
	if !slices.Equal(Reasons, want) {
		t.Errorf("Reasons = %q, want %q", Reasons, want)
	}
}

func TestIsHMAC(t *testing.T) {
	t.Parallel()
	for _, alg := range Algs {
		if got, want := IsHMAC(alg), strings.HasPrefix(alg, "HS"); got != want {
			t.Errorf("IsHMAC(%q) = %v, want %v", alg, got, want)
		}
	}
	for _, alg := range []string{"none", "", "hs256"} {
		if IsHMAC(alg) {
			t.Errorf("IsHMAC(%q) = true", alg)
		}
	}
}

// FuzzVerify checks that any input is refused with a known reason, never a panic, and that
// the refusal never holds the input.
func FuzzVerify(f *testing.F) {
	now := time.Now()
	for _, s := range []string{"", "a.b", "a.b.c", "a.b.c.d", "..", "eyJhbGciOiJub25lIn0.e30.",
		mint(f, jwt.SigningMethodHS256, testSecret, validClaims(now), nil),
		mint(f, jwt.SigningMethodHS256, []byte("x"), validClaims(now), nil)} {
		f.Add(s)
	}
	v := newHMACVerifier(f)
	f.Fuzz(func(t *testing.T, token string) {
		g, err := v.Verify(context.Background(), token)
		if err == nil {
			if g == nil || g.Subject == "" || g.Expires.IsZero() {
				t.Fatalf("Verify(%q) = %+v, nil", token, g)
			}
			return
		}
		fl := AsFailure(err)
		if !slices.Contains(Reasons, fl.Reason) {
			t.Fatalf("reason %q", fl.Reason)
		}
		if len(token) >= 24 && (strings.Contains(fl.Error(), token) || strings.Contains(fl.Message, token)) {
			t.Fatalf("failure %q holds the token", fl.Error())
		}
	})
}
