package conform

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/token"
)

// writeKey writes k as a PEM PKCS#8 private key (or, with pkcs1, an RSA PKCS#1 one).
func writeKey(t *testing.T, k any, pkcs1 bool) string {
	t.Helper()
	var block *pem.Block
	if pkcs1 {
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type testKeys struct{ rsa, rsaPKCS1, ec, ecP384, ed string }

func makeKeys(t *testing.T) testKeys {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ek384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{rsa: writeKey(t, rk, false), rsaPKCS1: writeKey(t, rk, true), ec: writeKey(t, ek, false), ecP384: writeKey(t, ek384, false), ed: writeKey(t, edk, false)}
}

func TestLoadJWKSKey(t *testing.T) {
	keys := makeKeys(t)
	tests := []struct {
		name    string
		path    string
		alg     string
		wantErr string
	}{
		{name: "RSA", path: keys.rsa, alg: "RS256"},
		{name: "EC P-256", path: keys.ec, alg: "ES256"},
		{name: "Ed25519", path: keys.ed, alg: "EdDSA"},
		{name: "EC P-384", path: keys.ecP384, wantErr: "want P-256"},
		{name: "PKCS#1", path: keys.rsaPKCS1, wantErr: "PKCS#8"},
		{name: "missing", path: filepath.Join(t.TempDir(), "none.pem"), wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := loadJWKSKey(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadJWKSKey: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.alg != tt.alg {
				t.Fatalf("alg %s, want %s", k.alg, tt.alg)
			}
			// The key signs what its alg names.
			if _, err := token.Mint(token.Claims{Issuer: "i"}, token.Signer{Alg: k.alg, Key: k.key}); err != nil {
				t.Fatalf("mint with the loaded key: %v", err)
			}
			other, err := sameKind(k.key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := token.Mint(token.Claims{Issuer: "i"}, token.Signer{Alg: k.alg, Key: other}); err != nil {
				t.Fatalf("mint with a key of the same kind: %v", err)
			}
		})
	}
}

func TestRunAuthFlags(t *testing.T) {
	keys := makeKeys(t)
	base := []string{"--auth", "required", "--jwt-secret", "0123456789abcdef0123456789abcdef", "--jwt-issuer", "i", "--jwt-audience", "a"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "unknown mode", args: []string{"--auth", "sometimes"}, wantErr: `--auth "sometimes"`},
		{name: "no secret", args: []string{"--auth", "optional", "--jwt-issuer", "i", "--jwt-audience", "a"}, wantErr: "--jwt-secret: 0 bytes"},
		{name: "short secret", args: with("--jwt-secret", "short"), wantErr: "--jwt-secret: 5 bytes"},
		{name: "no issuer", args: with("--jwt-issuer", ""), wantErr: "--jwt-issuer"},
		{name: "no audience", args: with("--jwt-audience", ""), wantErr: "--jwt-audience"},
		{name: "negative leeway", args: with("--jwt-leeway", "-1s"), wantErr: "--jwt-leeway"},
		{name: "zero auth timeout", args: with("--auth-timeout", "0s"), wantErr: ""}, // 0 is the default
		{name: "negative auth timeout", args: with("--auth-timeout", "-1s"), wantErr: "--auth-timeout"},
		{name: "negative grace", args: with("--auth-expiry-grace", "-1s"), wantErr: "--auth-expiry-grace"},
		{name: "bad public pattern", args: with("--public-channels", "trades:pub*,trades:a*b"), wantErr: `--public-channels: pattern "trades:a*b"`},
		{name: "algs without HS256", args: with("--jwt-algs", "HS384"), wantErr: "--jwt-algs"},
		{name: "kid without key", args: with("--jwks-kid", "k"), wantErr: "--jwks-kid"},
		{name: "key without kid", args: with("--jwks-key-file", keys.rsa), wantErr: "--jwks-kid"},
		{name: "PKCS#1 key", args: with("--jwks-key-file", keys.rsaPKCS1, "--jwks-kid", "k"), wantErr: "PKCS#8"},
		{name: "EC key, algs without ES256", args: with("--jwks-key-file", keys.ec, "--jwks-kid", "k", "--jwt-algs", "HS256,RS256"), wantErr: "has no ES256"},
		{name: "Ed25519 key, default algs", args: with("--jwks-key-file", keys.ed, "--jwks-kid", "k"), wantErr: "has no EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			// No broker listens on port 1: a valid configuration fails later, at the producer.
			args := append([]string{"--brokers", "127.0.0.1:1", "--url", "ws://127.0.0.1:1/ws"}, tt.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err := Run(ctx, args, &out, &out)
			if tt.wantErr == "" {
				if err == nil || !strings.Contains(err.Error(), "kafka producer") {
					t.Fatalf("Run(%q) = %v, want only the producer to fail", tt.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
			if strings.Contains(err.Error()+out.String(), "0123456789abcdef0123456789abcdef") {
				t.Fatalf("the secret is printed: %v", err)
			}
		})
	}
}

func TestAuthDefaults(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantOnly string
		wantAlgs []string
	}{
		{name: "off leaves the run alone", cfg: Config{}, wantOnly: "", wantAlgs: []string{"HS256"}},
		{name: "on runs only the auth checks", cfg: Config{Auth: AuthConfig{Mode: authRequired}}, wantOnly: "^auth: |^frames: ", wantAlgs: []string{"HS256"}},
		{name: "an explicit run wins", cfg: Config{Only: "^auth: header", Auth: AuthConfig{Mode: authOptional}}, wantOnly: "^auth: header", wantAlgs: []string{"HS256"}},
		{name: "JWKS adds the servers' default algs", cfg: Config{Auth: AuthConfig{Mode: authOptional, JWKSKeyFile: "k.pem"}}, wantOnly: "^auth: |^frames: ", wantAlgs: []string{"HS256", "RS256", "ES256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.setDefaults()
			if c.Only != tt.wantOnly {
				t.Errorf("Only %q, want %q", c.Only, tt.wantOnly)
			}
			if strings.Join(c.Auth.Algs, ",") != strings.Join(tt.wantAlgs, ",") {
				t.Errorf("Algs %q, want %q", c.Auth.Algs, tt.wantAlgs)
			}
			if c.Auth.Timeout != 5*time.Second || c.Auth.ExpiryGrace != 30*time.Second || c.Auth.Leeway != 30*time.Second {
				t.Errorf("timeouts %v %v %v, want the servers' defaults", c.Auth.Timeout, c.Auth.ExpiryGrace, c.Auth.Leeway)
			}
		})
	}
}

func TestAuthChecksSelection(t *testing.T) {
	tests := []struct {
		name    string
		auth    AuthConfig
		want    int
		has     []string
		hasNone []string
	}{
		{name: "optional, no public channels", auth: AuthConfig{Mode: authOptional}, want: 15,
			hasNone: []string{"auth: optional, a public", "auth: required", "auth: JWKS", "auth: a token adds"}},
		{name: "optional, public channels", auth: AuthConfig{Mode: authOptional, PublicChannels: []string{"trades:pub*"}}, want: 17,
			has: []string{"auth: optional, a public", "auth: a token adds"}},
		{name: "public channels of another topic only", auth: AuthConfig{Mode: authOptional, PublicChannels: []string{"tickers:*"}}, want: 15},
		{name: "required, public channels, JWKS", auth: AuthConfig{Mode: authRequired, PublicChannels: []string{"trades:pub*"}, JWKSKeyFile: "k"}, want: 21,
			has: []string{"auth: required, without a valid token", "auth: required, no valid token", "auth: JWKS, another key"}, hasNone: []string{"auth: optional"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := authChecks(Config{Topic: "trades", Auth: tt.auth})
			var names []string
			seen := map[string]bool{}
			for _, c := range cs {
				if seen[c.name] {
					t.Errorf("check %q twice", c.name)
				}
				seen[c.name] = true
				if !strings.HasPrefix(c.name, "auth: ") {
					t.Errorf("check %q does not start with \"auth: \" (the default --run of auth runs)", c.name)
				}
				names = append(names, c.name)
			}
			all := strings.Join(names, "\n")
			if len(cs) != tt.want {
				t.Errorf("%d checks, want %d:\n%s", len(cs), tt.want, all)
			}
			for _, h := range tt.has {
				if !strings.Contains(all, h) {
					t.Errorf("no check %q in\n%s", h, all)
				}
			}
			for _, h := range tt.hasNone {
				if strings.Contains(all, h) {
					t.Errorf("a check %q in\n%s", h, all)
				}
			}
		})
	}
}

func TestPublicAndPrivateKeys(t *testing.T) {
	tests := []struct {
		name        string
		public      []string
		wantChannel func(run string) string // "" when no public key
		wantKey     string                  // for exact patterns
		privateErr  bool
	}{
		{name: "prefix pattern", public: []string{"tickers:*", "trades:pub-*"}, wantChannel: func(run string) string { return "trades:pub-" + run + "-x-1" }},
		{name: "exact channel", public: []string{"trades:BTC"}, wantChannel: func(string) string { return "trades:BTC" }, wantKey: "BTC"},
		{name: "the topic's own channel", public: []string{"trades"}, wantChannel: func(string) string { return "trades" }, wantKey: ""},
		{name: "whole topic public", public: []string{"trades:*"}, wantChannel: func(run string) string { return "trades:" + run + "-x-1" }, privateErr: true},
		{name: "none of the topic", public: []string{"tickers:*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &suite{cfg: Config{Topic: "trades", Auth: AuthConfig{PublicChannels: tt.public}}, run: "cf0000"}
			key, ch, err := s.publicKey("x")
			if tt.wantChannel == nil {
				if err == nil {
					t.Fatalf("publicKey: %q, want an error", ch)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if want := tt.wantChannel(s.run); ch != want {
					t.Errorf("channel %q, want %q", ch, want)
				}
				if !token.Allows(tt.public, ch) {
					t.Errorf("%q is not public under %q", ch, tt.public)
				}
				if wantCh := map[bool]string{true: "trades", false: "trades:" + key}[key == ""]; wantCh != ch {
					t.Errorf("key %q makes channel %q, not %q", key, wantCh, ch)
				}
			}
			_, err = s.privateKey("y")
			if tt.privateErr != (err != nil) {
				t.Errorf("privateKey: %v, want an error: %v", err, tt.privateErr)
			}
		})
	}
}

func TestAuthedBytes(t *testing.T) {
	id := `a"1`
	if got, want := authedBytes(&id, 1700000000), `{"op":"authed","id":"a\"1","exp":1700000000}`; got != want {
		t.Errorf("authedBytes = %s, want %s", got, want)
	}
	if got, want := authedBytes(nil, 5), `{"op":"authed","exp":5}`; got != want {
		t.Errorf("authedBytes = %s, want %s", got, want)
	}
}

func TestExpiryStart(t *testing.T) {
	for range 20 {
		now := time.Now()
		exp := expiryStart()
		if exp.Nanosecond() != 0 {
			t.Fatalf("exp %v is not whole seconds", exp)
		}
		if d := exp.Sub(now); d < 2*time.Second || d > 3*time.Second {
			t.Fatalf("exp %v ahead, want 2 to 3 s", d)
		}
		time.Sleep(37 * time.Millisecond)
	}
}
