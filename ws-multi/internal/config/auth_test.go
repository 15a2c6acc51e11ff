// This file is part of package config, duplicated in ws-single on purpose; they may diverge.

package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const secret32 = "0123456789abcdef0123456789abcdef"

// authOn is the environment of a valid WS_AUTH=required with an HMAC secret.
func authOn(extra map[string]string) map[string]string {
	e := map[string]string{"WS_AUTH": "required", "WS_JWT_HMAC_SECRET": secret32, "WS_JWT_ISSUER": "iss", "WS_JWT_AUDIENCE": "aud"}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

func TestLoadAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret32+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortFile := filepath.Join(dir, "short")
	if err := os.WriteFile(shortFile, []byte("short-secret-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c *Config)
		wantErr string
	}{
		{name: "required with a secret", env: authOn(nil), want: func(c *Config) {
			c.Auth, c.JWTHMACSecret, c.JWTIssuer, c.JWTAudience = AuthRequired, secret32, "iss", "aud"
		}},
		{name: "secret from a file, newline dropped", env: authOn(map[string]string{"WS_JWT_HMAC_SECRET": "", "WS_JWT_HMAC_SECRET_FILE": secretFile}), want: func(c *Config) {
			c.Auth, c.JWTHMACSecret, c.JWTHMACSecretFile, c.JWTIssuer, c.JWTAudience = AuthRequired, secret32, secretFile, "iss", "aud"
		}},
		{name: "public channels", env: map[string]string{"WS_PUBLIC_CHANNELS": "tickers:*, trades:BTC-*,book:ETH-USD"}, want: func(c *Config) {
			c.PublicChannels = []string{"tickers:*", "trades:BTC-*", "book:ETH-USD"}
		}},
		{name: "algs", env: authOn(map[string]string{"WS_JWT_ALGS": "HS256,HS512"}), want: func(c *Config) {
			c.Auth, c.JWTHMACSecret, c.JWTIssuer, c.JWTAudience, c.JWTAlgs = AuthRequired, secret32, "iss", "aud", []string{"HS256", "HS512"}
		}},
		{name: "unknown mode", env: map[string]string{"WS_AUTH": "on"}, wantErr: `WS_AUTH="on": must be off, optional or required`},
		{name: "no key", env: map[string]string{"WS_AUTH": "optional", "WS_JWT_ISSUER": "i", "WS_JWT_AUDIENCE": "a"}, wantErr: `WS_AUTH="optional": needs WS_JWT_HMAC_SECRET`},
		{name: "no issuer", env: authOn(map[string]string{"WS_JWT_ISSUER": ""}), wantErr: `WS_JWT_ISSUER="": must be set when WS_AUTH is required`},
		{name: "no audience", env: authOn(map[string]string{"WS_JWT_AUDIENCE": ""}), wantErr: `WS_JWT_AUDIENCE="": must be set`},
		{name: "short secret", env: authOn(map[string]string{"WS_JWT_HMAC_SECRET": "too-short"}), wantErr: `WS_JWT_HMAC_SECRET="(9 bytes, hidden)": must be at least 32 bytes`},
		{name: "short secret file", env: authOn(map[string]string{"WS_JWT_HMAC_SECRET": "", "WS_JWT_HMAC_SECRET_FILE": shortFile}), wantErr: `WS_JWT_HMAC_SECRET_FILE="(18 bytes, hidden)": must be at least 32 bytes`},
		{name: "secret and file", env: authOn(map[string]string{"WS_JWT_HMAC_SECRET_FILE": secretFile}), wantErr: "set only one of WS_JWT_HMAC_SECRET and WS_JWT_HMAC_SECRET_FILE"},
		{name: "missing secret file", env: authOn(map[string]string{"WS_JWT_HMAC_SECRET": "", "WS_JWT_HMAC_SECRET_FILE": filepath.Join(dir, "nope")}), wantErr: "WS_JWT_HMAC_SECRET_FILE"},
		{name: "JWKS URL not http", env: map[string]string{"WS_JWT_JWKS_URL": "file:///etc/keys"}, wantErr: `WS_JWT_JWKS_URL="file:///etc/keys": must be an http:// or https:// URL`},
		{name: "RS256 without JWKS", env: authOn(map[string]string{"WS_JWT_ALGS": "HS256,RS256"}), wantErr: "RS256 needs WS_JWT_JWKS_URL"},
		{name: "HS256 without secret", env: map[string]string{"WS_JWT_JWKS_URL": "https://idp/jwks", "WS_JWT_ALGS": "HS256"}, wantErr: "HS256 needs WS_JWT_HMAC_SECRET"},
		{name: "alg none", env: authOn(map[string]string{"WS_JWT_ALGS": "none"}), wantErr: `WS_JWT_ALGS="none": "none" is not one of`},
		{name: "bad public pattern", env: map[string]string{"WS_PUBLIC_CHANNELS": "trades:*BTC"}, wantErr: `WS_PUBLIC_CHANNELS="trades:*BTC"`},
		{name: "auth timeout zero", env: map[string]string{"WS_AUTH_TIMEOUT": "0s"}, wantErr: `WS_AUTH_TIMEOUT="0s"`},
		{name: "negative grace", env: map[string]string{"WS_AUTH_EXPIRY_GRACE": "-1s"}, wantErr: `WS_AUTH_EXPIRY_GRACE="-1s"`},
		{name: "negative leeway", env: map[string]string{"WS_JWT_LEEWAY": "-1s"}, wantErr: `WS_JWT_LEEWAY="-1s"`},
		{name: "cert without key", env: map[string]string{"WS_TLS_CERT_FILE": "/x.pem"}, wantErr: "WS_TLS_KEY_FILE"},
		{name: "key without cert", env: map[string]string{"WS_TLS_KEY_FILE": "/x.pem"}, wantErr: "WS_TLS_CERT_FILE"},
		{name: "cert not a pair", env: map[string]string{"WS_TLS_CERT_FILE": secretFile, "WS_TLS_KEY_FILE": secretFile}, wantErr: `WS_TLS_CERT_FILE="` + secretFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkLoad(t, tt.env, tt.want, tt.wantErr)
			if err != nil && (strings.Contains(err.Error(), secret32) || strings.Contains(err.Error(), "short-secret") ||
				strings.Contains(err.Error(), "too-short")) {
				t.Fatalf("Load() error %q prints the secret", err)
			}
		})
	}
}

func TestJWTAlgorithms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Config
		want []string
	}{
		{"secret", Config{JWTHMACSecret: secret32}, []string{"HS256"}},
		{"jwks", Config{JWTJWKSURL: "https://idp/jwks"}, []string{"RS256", "ES256"}},
		{"both", Config{JWTHMACSecret: secret32, JWTJWKSURL: "https://idp/jwks"}, []string{"HS256", "RS256", "ES256"}},
		{"given", Config{JWTHMACSecret: secret32, JWTAlgs: []string{"HS512"}}, []string{"HS512"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.JWTAlgorithms(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("JWTAlgorithms() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLoadTLSPair: a certificate and its key load; the pair is checked at start.
func TestLoadTLSPair(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"WS_TLS_CERT_FILE": certFile, "WS_TLS_KEY_FILE": keyFile}))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if c.TLSCertFile != certFile || c.TLSKeyFile != keyFile {
		t.Fatalf("TLS files %q %q", c.TLSCertFile, c.TLSKeyFile)
	}
}
