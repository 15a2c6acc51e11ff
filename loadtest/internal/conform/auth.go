package conform

// Configuration and helpers of the auth checks (issue 15: tokens, private channels). The
// checks themselves are in checks_auth*.go.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/token"
)

// Modes of WS_AUTH.
const (
	authOff      = "off"
	authOptional = "optional"
	authRequired = "required"
)

// AuthConfig is what the suite knows of the server's auth settings. They must match the
// server's; defaults are the servers' defaults.
type AuthConfig struct {
	// Mode is WS_AUTH: "off" (default) runs no auth check; "optional" or "required" runs
	// them. The other checks subscribe without a token, so with a mode set and no Only,
	// only the auth checks (and the frame check) run.
	Mode string
	// Secret is WS_JWT_HMAC_SECRET (at least 32 bytes): the suite signs its HS256 tokens
	// with it. Required with a mode.
	Secret string
	// Issuer and Audience are WS_JWT_ISSUER and WS_JWT_AUDIENCE. Required with a mode.
	Issuer   string
	Audience string
	// Leeway is WS_JWT_LEEWAY: the expired and not-yet-valid tokens are that much further
	// out. Default 30s.
	Leeway time.Duration
	// Algs is WS_JWT_ALGS. Default, as the servers': HS256, plus RS256 and ES256 when a
	// JWKS key is given. HS256 must be in it.
	Algs []string
	// PublicChannels is WS_PUBLIC_CHANNELS. The checks of public channels need a pattern of
	// the suite's topic that is "<topic>:*", "<topic>:<prefix>*" or an exact channel; they
	// do not run without one. A key of the form "<run>-..." must not be public.
	PublicChannels []string
	// Timeout is WS_AUTH_TIMEOUT: in required mode a connection without a valid token must
	// be closed with 4002 after it. Default 5s.
	Timeout time.Duration
	// ExpiryGrace is WS_AUTH_EXPIRY_GRACE: a connection whose token expired is closed with
	// 4001 that long after its exp. The two expiry checks take about 3 s plus it, so set
	// it short on the server (1s). Default 30s.
	ExpiryGrace time.Duration
	// JWKSKeyFile is a PEM PKCS#8 private key (RSA, EC P-256 or Ed25519) whose public half
	// the server's WS_JWT_JWKS_URL serves under the kid JWKSKeyID. Empty skips the JWKS
	// checks.
	JWKSKeyFile string
	JWKSKeyID   string
}

func (a *AuthConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&a.Mode, "auth", authOff, "the server's WS_AUTH: off, optional or required; optional and required run the auth checks (then, without --run, only those)")
	fs.StringVar(&a.Secret, "jwt-secret", "", "the server's WS_JWT_HMAC_SECRET (with --auth)")
	fs.StringVar(&a.Issuer, "jwt-issuer", "", "the server's WS_JWT_ISSUER (with --auth)")
	fs.StringVar(&a.Audience, "jwt-audience", "", "the server's WS_JWT_AUDIENCE (with --auth)")
	fs.DurationVar(&a.Leeway, "jwt-leeway", 30*time.Second, "the server's WS_JWT_LEEWAY")
	fs.Func("jwt-algs", "the server's WS_JWT_ALGS, comma-separated (default HS256, plus RS256,ES256 with --jwks-key-file)", func(v string) error {
		a.Algs = splitComma(v)
		return nil
	})
	fs.Func("public-channels", "the server's WS_PUBLIC_CHANNELS, comma-separated patterns", func(v string) error {
		a.PublicChannels = splitComma(v)
		return nil
	})
	fs.DurationVar(&a.Timeout, "auth-timeout", 5*time.Second, "the server's WS_AUTH_TIMEOUT")
	fs.DurationVar(&a.ExpiryGrace, "auth-expiry-grace", 30*time.Second, "the server's WS_AUTH_EXPIRY_GRACE; the expiry checks take about 3s plus it (set 1s on the server)")
	fs.StringVar(&a.JWKSKeyFile, "jwks-key-file", "", "PEM PKCS#8 private key (RSA, EC P-256, Ed25519) whose public half the server's WS_JWT_JWKS_URL serves; runs the JWKS checks")
	fs.StringVar(&a.JWKSKeyID, "jwks-kid", "", "the kid of --jwks-key-file's key in the server's JWK Set")
}

// splitComma splits a comma-separated list, trimming spaces and dropping empty entries.
func splitComma(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (a *AuthConfig) setDefaults() {
	if a.Mode == "" {
		a.Mode = authOff
	}
	if a.Leeway == 0 {
		a.Leeway = 30 * time.Second
	}
	if a.Timeout == 0 {
		a.Timeout = 5 * time.Second
	}
	if a.ExpiryGrace == 0 {
		a.ExpiryGrace = 30 * time.Second
	}
	if len(a.Algs) == 0 {
		a.Algs = []string{"HS256"}
		if a.JWKSKeyFile != "" {
			a.Algs = append(a.Algs, "RS256", "ES256")
		}
	}
}

// on reports whether the auth checks run.
func (a *AuthConfig) on() bool { return a.Mode == authOptional || a.Mode == authRequired }

// validate names the first auth setting that cannot work; with the mode off it checks
// nothing else.
func (a *AuthConfig) validate() error {
	switch a.Mode {
	case authOff:
		return nil
	case authOptional, authRequired:
	default:
		return fmt.Errorf("--auth %q: must be off, optional or required", a.Mode)
	}
	switch {
	case len(a.Secret) < token.MinSecretBytes:
		// Never print the secret, only its length.
		return fmt.Errorf("--jwt-secret: %d bytes, want at least %d (the server's WS_JWT_HMAC_SECRET)", len(a.Secret), token.MinSecretBytes)
	case a.Issuer == "":
		return errors.New("--jwt-issuer: empty (the server's WS_JWT_ISSUER)")
	case a.Audience == "":
		return errors.New("--jwt-audience: empty (the server's WS_JWT_AUDIENCE)")
	case a.Leeway < 0 || a.Leeway > 24*time.Hour:
		return fmt.Errorf("--jwt-leeway %v: must be 0 to 24h", a.Leeway)
	case a.Timeout <= 0:
		return fmt.Errorf("--auth-timeout %v: must be positive", a.Timeout)
	case a.ExpiryGrace < 0:
		return fmt.Errorf("--auth-expiry-grace %v: must not be negative", a.ExpiryGrace)
	case !slices.Contains(a.Algs, "HS256"):
		return fmt.Errorf("--jwt-algs %q: must hold HS256 (the suite signs its tokens with --jwt-secret)", strings.Join(a.Algs, ","))
	case a.JWKSKeyID != "" && a.JWKSKeyFile == "":
		return errors.New("--jwks-kid: needs --jwks-key-file")
	}
	for _, p := range a.PublicChannels {
		if err := token.ValidatePattern(p); err != nil {
			return fmt.Errorf("--public-channels: %w", err)
		}
	}
	if a.JWKSKeyFile == "" {
		return nil
	}
	if a.JWKSKeyID == "" {
		return errors.New("--jwks-key-file: needs --jwks-kid")
	}
	k, err := loadJWKSKey(a.JWKSKeyFile)
	if err != nil {
		return err
	}
	if !slices.Contains(a.Algs, k.alg) {
		return fmt.Errorf("--jwks-key-file %s: a %s key, but --jwt-algs %q has no %s", a.JWKSKeyFile, k.kind, strings.Join(a.Algs, ","), k.alg)
	}
	return nil
}

// jwksKey is the private key behind the server's JWK Set.
type jwksKey struct {
	key  crypto.Signer
	alg  string // RS256, ES256 or EdDSA
	kind string // for messages
}

// loadJWKSKey reads a PEM PKCS#8 private key: RSA, EC P-256 or Ed25519.
func loadJWKSKey(path string) (jwksKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return jwksKey{}, fmt.Errorf("--jwks-key-file: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return jwksKey{}, fmt.Errorf("--jwks-key-file %s: no PEM \"PRIVATE KEY\" block (PKCS#8)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return jwksKey{}, fmt.Errorf("--jwks-key-file %s: %w", path, err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return jwksKey{key: k, alg: "RS256", kind: "RSA"}, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return jwksKey{}, fmt.Errorf("--jwks-key-file %s: an EC key on %s, want P-256 (ES256)", path, k.Curve.Params().Name)
		}
		return jwksKey{key: k, alg: "ES256", kind: "EC P-256"}, nil
	case ed25519.PrivateKey:
		return jwksKey{key: k, alg: "EdDSA", kind: "Ed25519"}, nil
	default:
		return jwksKey{}, fmt.Errorf("--jwks-key-file %s: a %T, want RSA, EC P-256 or Ed25519", path, k)
	}
}

// claims are valid claims for the server, allowing patterns (nil: no ws claim), valid
// for an hour.
func (s *suite) claims(patterns ...string) token.Claims {
	now := time.Now()
	return token.Claims{
		Issuer: s.cfg.Auth.Issuer, Audience: s.cfg.Auth.Audience, Subject: "conform-" + s.run,
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), Channels: patterns,
	}
}

// hs256 signs c with the server's secret.
func (s *suite) hs256(c token.Claims) (string, error) {
	return token.Mint(c, token.Signer{Alg: "HS256", Key: []byte(s.cfg.Auth.Secret)})
}

// validToken is a valid HS256 token allowing patterns, and its exp.
func (s *suite) validToken(patterns ...string) (string, int64, error) {
	c := s.claims(patterns...)
	tok, err := s.hs256(c)
	return tok, c.ExpiresAt.Unix(), err
}

// auth sends an auth op and waits for its reply.
func (c *client) auth(ctx context.Context, id, tok string) (Envelope, error) {
	return c.request(ctx, id, map[string]any{"op": "auth", "id": id, "token": tok})
}

// authedBytes is the exact authed reply: the contract's field order, id only when given.
func authedBytes(id *string, exp int64) string {
	if id == nil {
		return fmt.Sprintf(`{"op":"authed","exp":%d}`, exp)
	}
	b, _ := json.Marshal(*id)
	return fmt.Sprintf(`{"op":"authed","id":%s,"exp":%d}`, b, exp)
}

// expectAuthed checks that r is the authed reply to id for a token expiring at exp.
func expectAuthed(r Envelope, id string, exp int64) error {
	if want := authedBytes(&id, exp); string(r.Raw) != want {
		return fmt.Errorf("auth %q: reply %s, want %s", id, r.Raw, want)
	}
	return nil
}

// authWith sends tok and insists on its authed reply.
func (c *client) authWith(ctx context.Context, id, tok string, exp int64) error {
	r, err := c.auth(ctx, id, tok)
	if err != nil {
		return err
	}
	return expectAuthed(r, id, exp)
}

// authed dials and authenticates with a valid HS256 token allowing patterns.
func (s *suite) authed(ctx context.Context, patterns ...string) (*client, error) {
	tok, exp, err := s.validToken(patterns...)
	if err != nil {
		return nil, err
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return nil, err
	}
	if err := c.authWith(ctx, "auth", tok, exp); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// authedSubscribed dials, authenticates for channels and subscribes to them.
func (s *suite) authedSubscribed(ctx context.Context, channels ...string) (*client, error) {
	c, err := s.authed(ctx, channels...)
	if err != nil {
		return nil, err
	}
	if err := c.subscribe(ctx, "sub", channels...); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// expectDenial checks that r is the error reply to id with code, naming channel (empty:
// no channel field expected).
func expectDenial(r Envelope, id, code, channel string) error {
	switch {
	case r.Op != "error" || r.Code != code:
		return fmt.Errorf("reply %s, want error %s", r.Raw, code)
	case !r.IDIs(id):
		return fmt.Errorf("reply %s, want id %q", r.Raw, id)
	case r.Channel != channel:
		return fmt.Errorf("reply %s names channel %q, want %q", r.Raw, r.Channel, channel)
	case r.Message == "":
		return fmt.Errorf("reply %s has no message", r.Raw)
	}
	return nil
}

// subscribeDenied sends a subscribe to channels and expects an error with code naming
// channel.
func (c *client) subscribeDenied(ctx context.Context, id, code, channel string, channels ...string) error {
	r, err := c.request(ctx, id, map[string]any{"op": "subscribe", "id": id, "channels": channels})
	if err != nil {
		return err
	}
	if err := expectDenial(r, id, code, channel); err != nil {
		return fmt.Errorf("subscribe %q: %w", channels, err)
	}
	return nil
}

// privateKey is a run-unique key whose channel on the suite's topic WS_PUBLIC_CHANNELS
// does not allow.
func (s *suite) privateKey(what string) (string, error) {
	key := s.key(what)
	if token.Allows(s.cfg.Auth.PublicChannels, s.channel(key)) {
		return "", fmt.Errorf("--public-channels %q allows %s: the auth checks need channels of --topic that are not public", strings.Join(s.cfg.Auth.PublicChannels, ","), s.channel(key))
	}
	return key, nil
}

// privateKeys are n private keys.
func (s *suite) privateKeys(what string, n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		k, err := s.privateKey(what)
		if err != nil {
			return nil, err
		}
		out[i] = k
	}
	return out, nil
}

// publicPattern is the first pattern of WS_PUBLIC_CHANNELS the suite can produce to (one
// of its topic), or "".
func publicPattern(a AuthConfig, topic string) string {
	for _, p := range a.PublicChannels {
		if p == topic || strings.HasPrefix(p, topic+":") {
			return p
		}
	}
	return ""
}

// publicKey returns a record key whose channel WS_PUBLIC_CHANNELS allows (run-unique
// unless the pattern is an exact channel), and that channel.
func (s *suite) publicKey(what string) (key, channel string, err error) {
	p := publicPattern(s.cfg.Auth, s.cfg.Topic)
	prefix, wild := strings.CutSuffix(p, "*")
	switch {
	case p == "":
		return "", "", errors.New("no pattern of --public-channels is of --topic")
	case wild:
		key = strings.TrimPrefix(prefix, s.cfg.Topic+":") + s.key(what)
		channel = s.channel(key)
	case p == s.cfg.Topic:
		key, channel = "", p // a record without a key is on the topic's own channel
	default:
		key, channel = strings.TrimPrefix(p, s.cfg.Topic+":"), p
	}
	return key, channel, nil
}

// deliver produces records with key until one reaches c (the server may not have joined
// its topic yet when the first auth check runs) and returns where they landed.
func (s *suite) deliver(ctx context.Context, c *client, key string) (map[produced]bool, error) {
	sent := map[produced]bool{}
	mine := func(e Envelope) bool {
		return e.Topic == s.cfg.Topic && e.Partition != nil && e.Offset != nil && sent[produced{*e.Partition, *e.Offset}]
	}
	for i := 0; ; i++ {
		p, err := s.prod.send(record{key: &key, value: fmt.Appendf(nil, `{"auth":%d}`, i)})
		if err != nil {
			return nil, err
		}
		sent[p] = true
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err = c.waitFor(wctx, "a record with key "+key, mine)
		cancel()
		if err == nil {
			return sent, nil
		}
		if ctx.Err() != nil || c.ended() {
			return nil, fmt.Errorf("none of %d records with key %q delivered: %w", len(sent), key, err)
		}
	}
}

// ended reports whether the connection has ended.
func (c *client) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// notDelivered proves that records with key reach witness and not c: once the witness
// has one, and a moment later, c has none of them.
func (s *suite) notDelivered(ctx context.Context, c, witness *client, key string) error {
	sent, err := s.deliver(ctx, witness, key)
	if err != nil {
		return fmt.Errorf("the witness: %w", err)
	}
	time.Sleep(300 * time.Millisecond)
	got := c.messages(func(e Envelope) bool {
		return e.Topic == s.cfg.Topic && e.Partition != nil && e.Offset != nil && sent[produced{*e.Partition, *e.Offset}]
	})
	if len(got) > 0 {
		return fmt.Errorf("%d records of %s delivered: %s", len(got), s.channel(key), got[0].Raw)
	}
	return nil
}

// pingAfter checks that c still answers a ping after what, so the connection stayed open.
func pingAfter(ctx context.Context, c *client, what string) error {
	if err := c.ping(ctx, "after"); err != nil {
		return fmt.Errorf("after %s the connection must stay open: %w", what, err)
	}
	return nil
}

// sleepUntil waits until t or ctx's end.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
