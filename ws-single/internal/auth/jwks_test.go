// This file is duplicated from ws-multi (internal/auth/jwks_test.go) on purpose: the
// variants share token verification and channel permissions.

package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Test JWK Set settings: a fast periodic refresh so that a removal shows within the test.
const (
	testJWKSRefresh = 200 * time.Millisecond
	testJWKSTimeout = 2 * time.Second
	// boundSlack is what a bounded wait may exceed JWKSTimeout by (scheduling, -race).
	boundSlack = time.Second
)

// rsaKey1 is made once: RSA generation is slow under -race.
var rsaKey1 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func newEC384(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEC(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jwksServer serves a JWK Set the test changes while it runs, and counts the requests.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64
	delay    atomic.Int64 // a request waits this long (ns) before its answer, or until it ends

	mu   sync.Mutex
	keys map[string]jwkset.JWK // by kid
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: make(map[string]jwkset.JWK)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	store := jwkset.NewMemoryStorage()
	s.mu.Lock()
	kids := make([]string, 0, len(s.keys))
	for kid := range s.keys {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	for _, kid := range kids {
		if err := store.KeyWrite(r.Context(), s.keys[kid]); err != nil {
			s.mu.Unlock()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	s.mu.Unlock()
	body, err := store.JSONPublic(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(body)
}

// put serves pub (a public key) under kid with the JWK "alg" alg.
func (s *jwksServer) put(t *testing.T, kid string, pub any, alg jwkset.ALG) jwkset.JWK {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig},
	})
	if err != nil {
		t.Fatalf("JWK %s: %v", kid, err)
	}
	s.mu.Lock()
	s.keys[kid] = jwk
	s.mu.Unlock()
	return jwk
}

func (s *jwksServer) remove(kid string) {
	s.mu.Lock()
	delete(s.keys, kid)
	s.mu.Unlock()
}

// jwksConfig is the test Config of a verifier reading the JWK Set at url.
func jwksConfig(url string) Config {
	return Config{
		JWKSURL:     url,
		JWKSRefresh: testJWKSRefresh,
		JWKSTimeout: testJWKSTimeout,
		Issuer:      testIssuer,
		Audience:    testAudience,
		Algs:        []string{"RS256", "ES256"},
		Leeway:      testLeeway,
	}
}

// newJWKSVerifier starts a verifier whose background refresh ends with the test.
func newJWKSVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the server's Close (cleanups run last first)
	v, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func kid(k string) map[string]any { return map[string]any{"kid": k} }

func TestJWKSVerify(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	ec1, ecOther := newEC(t), newEC(t)
	srv.put(t, "k1", &ec1.PublicKey, jwkset.AlgES256)
	srv.put(t, "r1", &rsaKey1().PublicKey, jwkset.AlgRS256)
	cfg := jwksConfig(srv.URL)
	cfg.Algs = append(cfg.Algs, "PS256", "ES384")
	v := newJWKSVerifier(t, cfg)
	now := time.Now()
	claims := validClaims(now)

	tests := []struct {
		name   string
		token  string
		reason []string // nil: valid
	}{
		{name: "ES256 valid", token: mint(t, jwt.SigningMethodES256, ec1, claims, kid("k1"))},
		{name: "RS256 valid", token: mint(t, jwt.SigningMethodRS256, rsaKey1(), claims, kid("r1"))},
		{name: "ES256 valid without kid", token: mint(t, jwt.SigningMethodES256, ec1, claims, nil)},
		{name: "RS256 valid without kid", token: mint(t, jwt.SigningMethodRS256, rsaKey1(), claims, nil)},
		{
			name:   "another key with kid k1",
			token:  mint(t, jwt.SigningMethodES256, ecOther, claims, kid("k1")),
			reason: []string{ReasonSignature},
		},
		{
			name:   "another key without kid",
			token:  mint(t, jwt.SigningMethodES256, ecOther, claims, nil),
			reason: []string{ReasonSignature},
		},
		{
			name:   "RS256 token naming the EC key",
			token:  mint(t, jwt.SigningMethodRS256, rsaKey1(), claims, kid("k1")),
			reason: []string{ReasonSignature},
		},
		{
			name:   "PS256 token naming an RS256 JWK",
			token:  mint(t, jwt.SigningMethodPS256, rsaKey1(), claims, kid("r1")),
			reason: []string{ReasonSignature, ReasonAlgorithm},
		},
		{
			// The set is read but has no PS256 key: no key fits, which a retry would not
			// change (not keys_unavailable, whose message says "try again").
			name:   "PS256 token without kid",
			token:  mint(t, jwt.SigningMethodPS256, rsaKey1(), claims, nil),
			reason: []string{ReasonUnknownKey},
		},
		{
			name:   "ES384 token without kid",
			token:  mint(t, jwt.SigningMethodES384, newEC384(t), claims, nil),
			reason: []string{ReasonUnknownKey, ReasonSignature},
		},
		{
			name:   "RS384 not allowed",
			token:  mint(t, jwt.SigningMethodRS384, rsaKey1(), claims, kid("r1")),
			reason: []string{ReasonAlgorithm},
		},
		{
			name:   "HS256 not allowed",
			token:  mint(t, jwt.SigningMethodHS256, testSecret, claims, kid("k1")),
			reason: []string{ReasonAlgorithm},
		},
		{
			name:   "unknown kid",
			token:  mint(t, jwt.SigningMethodES256, ec1, claims, kid("nope")),
			reason: []string{ReasonUnknownKey},
		},
		{
			name: "expired",
			token: mint(t, jwt.SigningMethodES256, ec1, jwt.MapClaims{
				"iss": testIssuer, "aud": testAudience, "sub": testSubject, "exp": now.Add(-time.Hour).Unix(),
			}, kid("k1")),
			reason: []string{ReasonExpired},
		},
		{
			name: "wrong issuer",
			token: mint(t, jwt.SigningMethodES256, ec1, jwt.MapClaims{
				"iss": "https://evil.example.test/", "aud": testAudience, "sub": testSubject, "exp": now.Add(time.Hour).Unix(),
			}, kid("k1")),
			reason: []string{ReasonIssuer},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: "unknown kid" spends the verifier's one refetch.
			g, err := v.Verify(t.Context(), tt.token)
			if tt.reason == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want a grant", err)
				}
				if g.Subject != testSubject || g.MaxSubscriptions != 5 || !g.Allow.Allows("book:x") {
					t.Errorf("grant = %+v", g)
				}
				return
			}
			if g != nil {
				t.Errorf("Verify returned grant %+v with error %v", g, err)
			}
			checkFailure(t, tt.token, err, tt.reason...)
		})
	}
}

// TestJWKSConfusion signs HS256 tokens with forms of the RSA public key served in the JWK
// Set as the HMAC secret (the "HS/RS confusion"). None may verify.
func TestJWKSConfusion(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	pub := &rsaKey1().PublicKey
	jwk := srv.put(t, "r1", pub, jwkset.AlgRS256)

	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	jwkJSON, err := json.Marshal(jwk.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	setJSON, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"PKIX PEM":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"PKCS1 PEM":  pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}),
		"PKIX DER":   der,
		"PKCS1 DER":  x509.MarshalPKCS1PublicKey(pub),
		"JWK JSON":   jwkJSON,
		"JWK Set":    setJSON,
		"modulus":    pub.N.Bytes(),
		"served set": mustGet(t, srv.URL),
	}

	configs := []struct {
		name   string
		edit   func(*Config)
		reason string
	}{
		{name: "HS256 not allowed", edit: func(*Config) {}, reason: ReasonAlgorithm},
		{
			name: "HS256 allowed with another secret",
			edit: func(c *Config) {
				c.Algs = append(c.Algs, "HS256")
				c.HMACSecret = testSecret
			},
			reason: ReasonSignature,
		},
	}
	for _, cc := range configs {
		t.Run(cc.name, func(t *testing.T) {
			t.Parallel()
			cfg := jwksConfig(srv.URL)
			cc.edit(&cfg)
			v := newJWKSVerifier(t, cfg)
			for name, secret := range secrets {
				for _, method := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384} {
					t.Run(name+" "+method.Alg(), func(t *testing.T) {
						for _, header := range []map[string]any{kid("r1"), nil} {
							token := mint(t, method, secret, validClaims(time.Now()), header)
							g, err := v.Verify(t.Context(), token)
							if err == nil {
								t.Fatalf("an %s token keyed with the %s verified: %+v", method.Alg(), name, g)
							}
							want := cc.reason
							if method != jwt.SigningMethodHS256 {
								want = ReasonAlgorithm // HS384 is never allowed here
							}
							checkFailure(t, token, err, want)
						}
					})
				}
			}
			if cfg.HMACSecret != nil {
				// The control: the configured secret does verify HS256, even with a kid.
				token := mint(t, jwt.SigningMethodHS256, testSecret, validClaims(time.Now()), kid("r1"))
				if _, err := v.Verify(t.Context(), token); err != nil {
					t.Errorf("HS256 with the configured secret: %v", err)
				}
			}
		})
	}
}

func mustGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestJWKSRotation adds a key to the served set, which a token may use at once (the
// unknown-kid refetch), then removes the old key, which the periodic refresh drops.
func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	ec1, ec2 := newEC(t), newEC(t)
	srv.put(t, "k1", &ec1.PublicKey, jwkset.AlgES256)
	v := newJWKSVerifier(t, jwksConfig(srv.URL))
	claims := validClaims(time.Now())
	tok1 := mint(t, jwt.SigningMethodES256, ec1, claims, kid("k1"))
	tok2 := mint(t, jwt.SigningMethodES256, ec2, claims, kid("k2"))

	if _, err := v.Verify(t.Context(), tok1); err != nil {
		t.Fatalf("k1 before the rotation: %v", err)
	}
	srv.put(t, "k2", &ec2.PublicKey, jwkset.AlgES256)
	if _, err := v.Verify(t.Context(), tok2); err != nil {
		t.Fatalf("k2 right after it is served: %v", err)
	}
	if _, err := v.Verify(t.Context(), tok1); err != nil {
		t.Fatalf("k1 while both are served: %v", err)
	}

	srv.remove("k1")
	deadline := time.Now().Add(10 * testJWKSRefresh)
	for {
		_, err := v.Verify(t.Context(), tok1)
		if err != nil {
			checkFailure(t, tok1, err, ReasonUnknownKey)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("k1 still verifies %v after it left the served set", 10*testJWKSRefresh)
		}
		time.Sleep(testJWKSRefresh / 4)
	}
	if _, err := v.Verify(t.Context(), tok2); err != nil {
		t.Fatalf("k2 after k1 left: %v", err)
	}
}

// TestJWKSUnknownKIDRefetch checks that, without waiting for the periodic refresh, a token
// with a new kid makes one refetch and verifies.
func TestJWKSUnknownKIDRefetch(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	ec1, ec2 := newEC(t), newEC(t)
	srv.put(t, "k1", &ec1.PublicKey, jwkset.AlgES256)
	cfg := jwksConfig(srv.URL)
	cfg.JWKSRefresh = time.Hour
	v := newJWKSVerifier(t, cfg)
	if got := srv.requests.Load(); got != 1 {
		t.Fatalf("%d fetches after New, want 1", got)
	}
	srv.put(t, "k2", &ec2.PublicKey, jwkset.AlgES256)
	token := mint(t, jwt.SigningMethodES256, ec2, validClaims(time.Now()), kid("k2"))
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("k2: %v", err)
	}
	if got := srv.requests.Load(); got != 2 {
		t.Errorf("%d fetches, want 2 (New and one refetch)", got)
	}
	// A known kid costs no fetch.
	for range 10 {
		if _, err := v.Verify(t.Context(), token); err != nil {
			t.Fatalf("k2 again: %v", err)
		}
	}
	if got := srv.requests.Load(); got != 2 {
		t.Errorf("%d fetches after verifying known kids, want 2", got)
	}
}

// TestJWKSUnknownKIDFlood sends 50 tokens with made-up kids at once: the unknown-kid refetch
// is rate-limited, so the JWK Set is fetched at most twice (New and one refetch), and no
// verification waits for the limiter.
func TestJWKSUnknownKIDFlood(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	ec := newEC(t)
	srv.put(t, "k1", &ec.PublicKey, jwkset.AlgES256)
	cfg := jwksConfig(srv.URL)
	cfg.JWKSRefresh = time.Hour // only the refetch may fetch
	v := newJWKSVerifier(t, cfg)

	const n = 50
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = mint(t, jwt.SigningMethodES256, ec, validClaims(time.Now()), kid(fmt.Sprintf("made-up-%d-%x", i, randBytes(t))))
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range tokens {
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), tokens[i]) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("token %d with a made-up kid verified", i)
		}
		checkFailure(t, tokens[i], err, ReasonUnknownKey)
	}
	if got := srv.requests.Load(); got > 2 {
		t.Errorf("%d fetches of the JWK Set for %d unknown kids, want at most 2", got, n)
	}
	if elapsed > testJWKSTimeout+boundSlack {
		t.Errorf("%d verifications took %v, want under %v", n, elapsed, testJWKSTimeout+boundSlack)
	}
	// The known key still verifies without a fetch.
	before := srv.requests.Load()
	if _, err := v.Verify(t.Context(), mint(t, jwt.SigningMethodES256, ec, validClaims(time.Now()), kid("k1"))); err != nil {
		t.Errorf("k1 after the flood: %v", err)
	}
	if got := srv.requests.Load(); got != before {
		t.Errorf("a known kid fetched the JWK Set")
	}
}

func randBytes(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJWKSServerDown checks a JWK Set URL that refuses connections from the start: New
// succeeds (the set is retried later), and a token is refused quickly.
func TestJWKSServerDown(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	var refreshErrs atomic.Int64
	cfg := jwksConfig(url)
	cfg.OnJWKSError = func(error) { refreshErrs.Add(1) }
	start := time.Now()
	v := newJWKSVerifier(t, cfg)
	if elapsed := time.Since(start); elapsed > testJWKSTimeout+boundSlack {
		t.Errorf("New took %v, want under %v", elapsed, testJWKSTimeout+boundSlack)
	}
	ec := newEC(t)
	for _, header := range []map[string]any{kid("k1"), nil} {
		token := mint(t, jwt.SigningMethodES256, ec, validClaims(time.Now()), header)
		start := time.Now()
		_, err := v.Verify(t.Context(), token)
		elapsed := time.Since(start)
		if err == nil {
			t.Fatal("a token verified without a JWK Set")
		}
		// New's doc: tokens fail with keys_unavailable until the set is read.
		checkFailure(t, token, err, ReasonKeysUnavailable)
		if elapsed > testJWKSTimeout+boundSlack {
			t.Errorf("Verify took %v, want under %v", elapsed, testJWKSTimeout+boundSlack)
		}
	}
	if refreshErrs.Load() == 0 {
		t.Error("OnJWKSError was not told of the failed fetch")
	}
}

// TestJWKSServerGone checks that keys already fetched keep verifying when the JWK Set
// server goes away.
func TestJWKSServerGone(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	ec := newEC(t)
	srv.put(t, "k1", &ec.PublicKey, jwkset.AlgES256)
	v := newJWKSVerifier(t, jwksConfig(srv.URL))
	srv.Close()
	time.Sleep(2 * testJWKSRefresh) // a periodic refresh fails meanwhile
	token := mint(t, jwt.SigningMethodES256, ec, validClaims(time.Now()), kid("k1"))
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Errorf("a fetched key after the server went away: %v", err)
	}
}

// TestJWKSSlow checks that a JWK Set server slower than JWKSTimeout bounds New and Verify
// by JWKSTimeout, and that it does not delay a key already fetched.
func TestJWKSSlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		slowFirst bool // slow from the start, or only after New's fetch
	}{
		{name: "from the start", slowFirst: true},
		{name: "after the first fetch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t)
			ec := newEC(t)
			srv.put(t, "k1", &ec.PublicKey, jwkset.AlgES256)
			slow := int64(3 * testJWKSTimeout)
			if tt.slowFirst {
				srv.delay.Store(slow)
			}
			start := time.Now()
			v := newJWKSVerifier(t, jwksConfig(srv.URL))
			if elapsed := time.Since(start); elapsed > testJWKSTimeout+boundSlack {
				t.Errorf("New took %v, want under %v", elapsed, testJWKSTimeout+boundSlack)
			}
			srv.delay.Store(slow)

			known := mint(t, jwt.SigningMethodES256, ec, validClaims(time.Now()), kid("k1"))
			start = time.Now()
			_, err := v.Verify(t.Context(), known)
			elapsed := time.Since(start)
			if tt.slowFirst {
				// The set never arrived: refused within the bound, keys_unavailable.
				if err == nil {
					t.Fatal("a token verified without a JWK Set")
				}
				checkFailure(t, known, err, ReasonKeysUnavailable)
				if elapsed > testJWKSTimeout+boundSlack {
					t.Errorf("Verify took %v, want under %v", elapsed, testJWKSTimeout+boundSlack)
				}
				return
			}
			if err != nil {
				t.Fatalf("a fetched key while the server is slow: %v", err)
			}
			if elapsed > boundSlack {
				t.Errorf("a fetched key took %v while the server is slow", elapsed)
			}
			unknown := mint(t, jwt.SigningMethodES256, ec, validClaims(time.Now()), kid("k2"))
			start = time.Now()
			_, err = v.Verify(t.Context(), unknown)
			elapsed = time.Since(start)
			checkFailure(t, unknown, err, ReasonKeysUnavailable, ReasonUnknownKey)
			if elapsed > testJWKSTimeout+boundSlack {
				t.Errorf("Verify of an unknown kid took %v, want under %v", elapsed, testJWKSTimeout+boundSlack)
			}
		})
	}
}

// TestJWKSCallerContext checks that a caller's shorter deadline bounds the wait too.
func TestJWKSCallerContext(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	ec := newEC(t)
	srv.put(t, "k1", &ec.PublicKey, jwkset.AlgES256)
	v := newJWKSVerifier(t, jwksConfig(srv.URL))
	srv.delay.Store(int64(3 * testJWKSTimeout))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	token := mint(t, jwt.SigningMethodES256, ec, validClaims(time.Now()), kid("k2"))
	start := time.Now()
	_, err := v.Verify(ctx, token)
	if elapsed := time.Since(start); elapsed > 200*time.Millisecond+boundSlack {
		t.Errorf("Verify took %v past its caller's 200ms deadline", elapsed)
	}
	checkFailure(t, token, err, ReasonKeysUnavailable, ReasonUnknownKey)
}

// TestJWKSEncryptionKeyRefused: a JWK marked "use":"enc" never verifies a token, even with the
// right kid and alg (RFC 7517 §4.2); one without "use" does.
func TestJWKSEncryptionKeyRefused(t *testing.T) {
	srv := newJWKSServer(t)
	key := newEC(t)
	for kid, use := range map[string]jwkset.USE{"enc": jwkset.UseEnc, "none": ""} {
		jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgES256, USE: use},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv.mu.Lock()
		srv.keys[kid] = jwk
		srv.mu.Unlock()
	}
	v := newJWKSVerifier(t, jwksConfig(srv.URL))
	now := time.Now()
	enc := mint(t, jwt.SigningMethodES256, key, validClaims(now), kid("enc"))
	_, err := v.Verify(context.Background(), enc)
	checkFailure(t, enc, err, ReasonSignature, ReasonUnknownKey)
	plain := mint(t, jwt.SigningMethodES256, key, validClaims(now), kid("none"))
	if _, err := v.Verify(context.Background(), plain); err != nil {
		t.Fatalf("a key without use: %v", err)
	}
}

// TestFailureSubjectOnlyWhenSigned: the audit log's sub is the issuer's: a token whose
// signature fails reports none, whatever it claims; one refused after its signature (wrong
// audience) reports its sub.
func TestFailureSubjectOnlyWhenSigned(t *testing.T) {
	v := newHMACVerifier(t)
	claims := validClaims(time.Now())
	claims["sub"] = "admin"
	forged := mint(t, jwt.SigningMethodHS256, []byte("not-the-secret-not-the-secret-0123456"), claims, nil)
	_, err := v.Verify(context.Background(), forged)
	if f := checkFailure(t, forged, err, ReasonSignature); f.Subject != "" {
		t.Errorf("forged token: Subject = %q, want none", f.Subject)
	}
	claims["aud"] = "elsewhere"
	signed := mint(t, jwt.SigningMethodHS256, []byte(testSecret), claims, nil)
	_, err = v.Verify(context.Background(), signed)
	if f := checkFailure(t, signed, err, ReasonAudience); f.Subject != "admin" {
		t.Errorf("wrong audience: Subject = %q, want admin", f.Subject)
	}
}
