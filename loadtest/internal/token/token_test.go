package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// parse verifies tok with key under alg at the given time and returns its claims and header.
func parse(t *testing.T, tok, alg string, key any, at time.Time) (jwt.MapClaims, map[string]any) {
	t.Helper()
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(func() time.Time { return at }))
	if err != nil {
		t.Fatalf("parse %s: %v", tok, err)
	}
	return parsed.Claims.(jwt.MapClaims), parsed.Header
}

func TestMint(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	full := Claims{
		Issuer: "https://issuer.test", Audience: "ws_poc", Subject: "user-1",
		IssuedAt: now, NotBefore: now.Add(-time.Second), ExpiresAt: now.Add(time.Hour + 500*time.Millisecond),
		Channels: []string{"trades:BTC-USD", "tickers:*", "trades:ETH*"}, MaxSubscriptions: 7,
	}
	fullWant := map[string]any{
		"iss": "https://issuer.test", "aud": "ws_poc", "sub": "user-1",
		"iat": float64(1700000000), "nbf": float64(1699999999), "exp": float64(1700003600),
		"ws": map[string]any{"subscribe": []any{"trades:BTC-USD", "tickers:*", "trades:ETH*"}, "max_subscriptions": float64(7)},
	}
	tests := []struct {
		name   string
		claims Claims
		signer Signer
		verify any // the key that verifies
		want   map[string]any
		header map[string]any
	}{
		{name: "HS256 every claim", claims: full, signer: Signer{Alg: "HS256", Key: testSecret}, verify: testSecret, want: fullWant,
			header: map[string]any{"alg": "HS256", "typ": "JWT"}},
		{name: "HS384 with kid", claims: full, signer: Signer{Alg: "HS384", Key: testSecret, KeyID: "k1"}, verify: testSecret, want: fullWant,
			header: map[string]any{"alg": "HS384", "typ": "JWT", "kid": "k1"}},
		{name: "RS256", claims: full, signer: Signer{Alg: "RS256", Key: rsaKey, KeyID: "rsa"}, verify: &rsaKey.PublicKey, want: fullWant,
			header: map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rsa"}},
		{name: "PS256", claims: full, signer: Signer{Alg: "PS256", Key: rsaKey}, verify: &rsaKey.PublicKey, want: fullWant,
			header: map[string]any{"alg": "PS256", "typ": "JWT"}},
		{name: "ES256", claims: full, signer: Signer{Alg: "ES256", Key: ecKey, KeyID: "ec"}, verify: &ecKey.PublicKey, want: fullWant,
			header: map[string]any{"alg": "ES256", "typ": "JWT", "kid": "ec"}},
		{name: "EdDSA", claims: full, signer: Signer{Alg: "EdDSA", Key: edKey}, verify: edPub, want: fullWant,
			header: map[string]any{"alg": "EdDSA", "typ": "JWT"}},
		{
			name:   "absent claims stay absent, no ws claim",
			claims: Claims{Issuer: "i", ExpiresAt: now.Add(time.Minute)},
			signer: Signer{Alg: "HS256", Key: testSecret}, verify: testSecret,
			want:   map[string]any{"iss": "i", "exp": float64(1700000060)},
			header: map[string]any{"alg": "HS256", "typ": "JWT"},
		},
		{
			name:   "max_subscriptions alone",
			claims: Claims{Issuer: "i", Audience: "a", Subject: "s", ExpiresAt: now.Add(time.Minute), MaxSubscriptions: 2},
			signer: Signer{Alg: "HS256", Key: testSecret}, verify: testSecret,
			want:   map[string]any{"iss": "i", "aud": "a", "sub": "s", "exp": float64(1700000060), "ws": map[string]any{"max_subscriptions": float64(2)}},
			header: map[string]any{"alg": "HS256", "typ": "JWT"},
		},
		{
			name:   "empty channel list is written",
			claims: Claims{Issuer: "i", Audience: "a", Subject: "s", ExpiresAt: now.Add(time.Minute), Channels: []string{}},
			signer: Signer{Alg: "HS256", Key: testSecret}, verify: testSecret,
			want:   map[string]any{"iss": "i", "aud": "a", "sub": "s", "exp": float64(1700000060), "ws": map[string]any{"subscribe": []any{}}},
			header: map[string]any{"alg": "HS256", "typ": "JWT"},
		},
		{
			name:   "alg none has an empty signature",
			claims: Claims{Issuer: "i", ExpiresAt: now.Add(time.Minute)},
			signer: Signer{Alg: "none"}, verify: jwt.UnsafeAllowNoneSignatureType,
			want:   map[string]any{"iss": "i", "exp": float64(1700000060)},
			header: map[string]any{"alg": "none", "typ": "JWT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Mint(tt.claims, tt.signer)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(tok, ".") != 2 {
				t.Fatalf("%q is not a compact JWS", tok)
			}
			claims, header := parse(t, tok, tt.signer.Alg, tt.verify, now)
			if !reflect.DeepEqual(map[string]any(claims), tt.want) {
				t.Errorf("claims %v, want %v", claims, tt.want)
			}
			if !reflect.DeepEqual(header, tt.header) {
				t.Errorf("header %v, want %v", header, tt.header)
			}
			if tt.signer.Alg == "none" && !strings.HasSuffix(tok, ".") {
				t.Errorf("alg none: %q has a signature", tok)
			}
		})
	}
}

// TestMintAudienceIsAString: a single aud is written as a JSON string, not an array.
func TestMintAudienceIsAString(t *testing.T) {
	tok, err := Mint(Claims{Audience: "ws_poc"}, Signer{Alg: "HS256", Key: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["aud"]) != `"ws_poc"` {
		t.Fatalf("aud %s, want \"ws_poc\"", m["aud"])
	}
}

func TestMintErrors(t *testing.T) {
	tests := []struct {
		name   string
		signer Signer
		want   error
	}{
		{name: "unknown alg", signer: Signer{Alg: "XS256", Key: testSecret}, want: ErrUnknownAlg},
		{name: "RS256 with a secret", signer: Signer{Alg: "RS256", Key: testSecret}, want: jwt.ErrInvalidKeyType},
		{name: "HS256 with a string key", signer: Signer{Alg: "HS256", Key: "not bytes"}, want: jwt.ErrInvalidKeyType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Mint(Claims{}, tt.signer)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Mint: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestClaimsValidate(t *testing.T) {
	valid := Claims{Issuer: "i", Audience: "a", Subject: "s", ExpiresAt: time.Unix(1, 0), Channels: []string{"t:k", "t:*", "t:p*"}}
	tests := []struct {
		name    string
		edit    func(*Claims)
		wantErr string
	}{
		{name: "valid", edit: func(*Claims) {}},
		{name: "no iss", edit: func(c *Claims) { c.Issuer = "" }, wantErr: "iss"},
		{name: "no aud", edit: func(c *Claims) { c.Audience = "" }, wantErr: "aud"},
		{name: "no sub", edit: func(c *Claims) { c.Subject = "" }, wantErr: "sub"},
		{name: "no exp", edit: func(c *Claims) { c.ExpiresAt = time.Time{} }, wantErr: "exp"},
		{name: "negative max_subscriptions", edit: func(c *Claims) { c.MaxSubscriptions = -1 }, wantErr: "max_subscriptions"},
		{name: "bad pattern", edit: func(c *Claims) { c.Channels = append(c.Channels, "t:a*b") }, wantErr: `ws.subscribe: pattern "t:a*b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			c.Channels = append([]string(nil), valid.Channels...)
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
