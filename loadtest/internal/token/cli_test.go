package token

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestRunMints(t *testing.T) {
	now := time.Unix(1700000000, 0)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	fileSecret := "abcdefghijklmnopqrstuvwxyz012345"
	if err := os.WriteFile(secretFile, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envSecret := "ENV-secret-0123456789abcdef0123456789"
	environ := map[string]string{"WS_JWT_HMAC_SECRET": " " + envSecret + "\n", "WS_JWT_ISSUER": "env-iss", "WS_JWT_AUDIENCE": "env-aud"}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		secret string
		want   map[string]any
	}{
		{
			name: "defaults from the environment", env: environ, secret: envSecret,
			want: map[string]any{"iss": "env-iss", "aud": "env-aud", "sub": "dev", "iat": float64(1700000000), "exp": float64(1700003600)},
		},
		{
			name: "every flag", env: environ, secret: "flag-secret-0123456789abcdef012345",
			args: []string{"--secret", "flag-secret-0123456789abcdef012345", "--issuer", "i", "--audience", "a", "--sub", "u1",
				"--channels", "trades:BTC, tickers:*,trades:ETH*", "--max-subscriptions", "3", "--ttl", "90s"},
			want: map[string]any{"iss": "i", "aud": "a", "sub": "u1", "iat": float64(1700000000), "exp": float64(1700000090),
				"ws": map[string]any{"subscribe": []any{"trades:BTC", "tickers:*", "trades:ETH*"}, "max_subscriptions": float64(3)}},
		},
		{
			name: "secret file wins over the environment", env: environ, secret: fileSecret,
			args: []string{"--secret-file", secretFile},
			want: map[string]any{"iss": "env-iss", "aud": "env-aud", "sub": "dev", "iat": float64(1700000000), "exp": float64(1700003600)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tt.args, func(k string) string { return tt.env[k] }, func() time.Time { return now }, &stdout, &stderr)
			if err != nil {
				t.Fatalf("run: %v (stderr %q)", err, stderr.String())
			}
			out := stdout.String()
			if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Fatalf("stdout %q, want one token and a newline", out)
			}
			claims, header := parse(t, strings.TrimSuffix(out, "\n"), "HS256", []byte(tt.secret), now)
			if !reflect.DeepEqual(map[string]any(claims), tt.want) {
				t.Errorf("claims %v, want %v", claims, tt.want)
			}
			if header["alg"] != "HS256" {
				t.Errorf("header %v, want alg HS256", header)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, "long")
	if err := os.WriteFile(long, bytes.Repeat([]byte("s"), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	good := []string{"--secret", "0123456789abcdef0123456789abcdef", "--issuer", "i", "--audience", "a"}
	with := func(extra ...string) []string { return append(append([]string(nil), good...), extra...) }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "no secret", args: []string{"--issuer", "i", "--audience", "a"}, wantErr: "--secret: empty"},
		{name: "explicitly empty secret beats the environment", args: with("--secret", ""), env: map[string]string{"WS_JWT_HMAC_SECRET": "0123456789abcdef0123456789abcdef"}, wantErr: "--secret: empty"},
		{name: "short secret", args: with("--secret", "short-secret"), wantErr: "--secret: 12 bytes, the servers need at least 32"},
		{name: "both secret flags", args: with("--secret-file", long), wantErr: "only one"},
		{name: "missing secret file", args: []string{"--secret-file", filepath.Join(dir, "none"), "--issuer", "i", "--audience", "a"}, wantErr: "--secret-file"},
		{name: "long secret file", args: []string{"--secret-file", long, "--issuer", "i", "--audience", "a"}, wantErr: "longer than 4096 bytes"},
		{name: "no issuer", args: with("--issuer", ""), wantErr: "--issuer: empty"},
		{name: "no audience", args: with("--audience", ""), wantErr: "--audience: empty"},
		{name: "empty sub", args: with("--sub", ""), wantErr: "--sub: empty"},
		{name: "zero ttl", args: with("--ttl", "0s"), wantErr: "--ttl"},
		{name: "negative max subscriptions", args: with("--max-subscriptions", "-1"), wantErr: "--max-subscriptions"},
		{name: "star inside a pattern", args: with("--channels", "trades:a*b"), wantErr: `--channels: pattern "trades:a*b": '*' is allowed only at the end`},
		{name: "empty pattern", args: with("--channels", "trades:a,,b:c"), wantErr: "--channels: pattern"},
		{name: "unknown flag", args: with("--nope"), wantErr: "not defined"},
		{name: "bad duration", args: with("--ttl", "soon"), wantErr: "invalid value"},
		{name: "stray argument", args: with("extra"), wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tt.args, func(k string) string { return tt.env[k] }, time.Now, &stdout, &stderr)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("run: %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run: %q, want it to contain %q", err, tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout %q, want nothing", stdout.String())
			}
			for _, secret := range []string{"0123456789abcdef0123456789abcdef", "short-secret"} {
				if strings.Contains(err.Error()+stderr.String(), secret) {
					t.Fatalf("the secret is printed: %v / %s", err, stderr.String())
				}
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run([]string{"--help"}, func(string) string { return "" }, time.Now, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run --help: %v", err)
	}
	if !strings.Contains(stderr.String(), "usage: loadtest token") {
		t.Fatalf("stderr %q", stderr.String())
	}
}

// TestRunTokenVerifiesOnlyWithItsSecret guards against a token that any key would verify.
func TestRunTokenVerifiesOnlyWithItsSecret(t *testing.T) {
	var stdout bytes.Buffer
	err := run([]string{"--secret", "0123456789abcdef0123456789abcdef", "--issuer", "i", "--audience", "a"},
		func(string) string { return "" }, time.Now, &stdout, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = jwt.Parse(strings.TrimSpace(stdout.String()), func(*jwt.Token) (any, error) { return []byte("another-secret-0123456789abcdef0123"), nil })
	if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Fatalf("parse with another secret: %v, want a signature error", err)
	}
}
