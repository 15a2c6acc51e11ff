package e2etest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
)

// Settings the auth configurations give both the servers and the suite.
const (
	authSecret   = "e2e-secret-0123456789abcdef-0123456789" // WS_JWT_HMAC_SECRET: 32 bytes or more
	authIssuer   = "https://issuer.e2e.test"
	authAudience = "ws_poc-e2e"
	authKeyID    = "e2e-rsa-1"
)

// jwks is a JWK Set served on loopback for WS_JWT_JWKS_URL: the public half of an RSA key
// whose private half is in keyFile (PEM PKCS#8) for `loadtest conform --jwks-key-file`.
type jwks struct {
	url     string
	keyFile string
	kid     string
}

// startJWKS generates an RSA 2048 key and serves its JWK Set until the test ends.
func startJWKS(t *testing.T) jwks {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "jwks-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	set, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": authKeyID,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(set)
	}))
	t.Cleanup(srv.Close)
	return jwks{url: srv.URL + "/.well-known/jwks.json", keyFile: keyFile, kid: authKeyID}
}

// authSettings are the server variables and the matching suite flags of an auth mode, with
// short timeouts so the suite's expiry and timeout checks stay quick.
func authSettings(mode string, public string, extraEnv, extraArgs []string) (env, args []string) {
	env = append([]string{"WS_AUTH=" + mode, "WS_JWT_HMAC_SECRET=" + authSecret, "WS_JWT_ISSUER=" + authIssuer,
		"WS_JWT_AUDIENCE=" + authAudience, "WS_AUTH_EXPIRY_GRACE=1s", "WS_PUBLIC_CHANNELS=" + public}, extraEnv...)
	args = append([]string{"--auth", mode, "--jwt-secret", authSecret, "--jwt-issuer", authIssuer,
		"--jwt-audience", authAudience, "--auth-expiry-grace", "1s", "--public-channels", public}, extraArgs...)
	return env, args
}

// authRequired is the "auth required" configuration of TestConformance: HS256 and RS256
// (a JWK Set served by the test), a 1 s auth timeout, public channels.
func authRequired(t *testing.T) (env, args []string) {
	k := startJWKS(t)
	return authSettings("required", "trades:public*",
		[]string{"WS_AUTH_TIMEOUT=1s", "WS_JWT_ALGS=HS256,RS256", "WS_JWT_JWKS_URL=" + k.url},
		[]string{"--auth-timeout", "1s", "--jwt-algs", "HS256,RS256", "--jwks-key-file", k.keyFile, "--jwks-kid", k.kid})
}

// authOptional is the "auth optional" configuration: HS256 only, public channels of both
// topics.
func authOptional(*testing.T) (env, args []string) {
	return authSettings("optional", "trades:public*,tickers:*", nil, nil)
}

// TestTokenCommand: a token printed by `loadtest token` (settings from the servers'
// variables) is accepted by both variants, and its channels may be subscribed.
func TestTokenCommand(t *testing.T) {
	lt := binary(t, "LOADTEST_BIN", "loadtest")
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			env, _ := authSettings("required", "trades:public*", nil, nil)
			broker := startBroker(t)
			srv := startServer(t, v.name, binary(t, v.envVar, v.name), broker, env...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := []string{"env", "WS_JWT_HMAC_SECRET=" + authSecret, "WS_JWT_ISSUER=" + authIssuer, "WS_JWT_AUDIENCE=" + authAudience,
				lt, "token", "--channels", "trades:BTC-*", "--max-subscriptions", "1"}
			out, err := runTool(ctx, "", nil, cmd[0], cmd[1:]...)
			if err != nil {
				t.Fatalf("loadtest token: %v\n%s", err, out)
			}
			tok := strings.TrimSuffix(out, "\n")
			if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
				t.Fatalf("loadtest token printed %q, want one JWT and a newline", out)
			}
			c := dialWS(ctx, t, srv.wsURL())
			c.send(ctx, t, map[string]any{"op": "auth", "id": "a", "token": tok})
			c.readUntil(ctx, t, "authed", func(e conform.Envelope) bool { return e.Op == "authed" && e.IDIs("a") })
			c.subscribe(ctx, t, "trades:BTC-USD")
			// max_subscriptions 1: a second channel passes the token's limit.
			c.send(ctx, t, map[string]any{"op": "subscribe", "id": "s2", "channels": []string{"trades:BTC-EUR"}})
			if _, err := c.next(ctx, func(conform.Envelope) bool { return false }); err == nil || !strings.Contains(err.Error(), "too_many_subscriptions") {
				t.Fatalf("a second channel under max_subscriptions 1: %v, want error too_many_subscriptions", err)
			}
		})
	}
}
