// This file is duplicated in ws-multi (internal/server/auth_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/auth"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
)

const (
	testSecret   = "0123456789abcdef0123456789abcdef-test"
	testIssuer   = "https://issuer.test"
	testAudience = "ws-test"
)

// withAuth turns auth on in mode with an HS256 secret, trades:pub* public, and short timers.
func withAuth(mode string) option {
	return func(c *config.Config, _ *setup) {
		c.Auth = mode
		c.JWTHMACSecret = testSecret
		c.JWTIssuer, c.JWTAudience = testIssuer, testAudience
		c.PublicChannels = []string{"trades:pub*"}
		c.AuthTimeout = time.Second
		c.AuthExpiryGrace = 500 * time.Millisecond
	}
}

// token mints an HS256 token for user allowing patterns, expiring at exp; extra claims
// override.
func token(t *testing.T, exp time.Time, patterns []string, extra jwt.MapClaims) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "user-1", "exp": exp.Unix(),
		"ws": map[string]any{"subscribe": patterns}}
	for k, v := range extra {
		claims[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthRequired(t *testing.T) {
	f := start(t, withAuth(config.AuthRequired))
	c := f.connect()
	c.send(`{"op":"subscribe","id":"s0","channels":["trades:pub1"]}`)
	c.expect(map[string]any{"op": "error", "id": "s0", "code": "unauthorized", "channel": "trades:pub1"})

	exp := time.Now().Add(time.Hour)
	c.send(`{"op":"auth","id":"a1","token":"` + token(t, exp, []string{"trades:K*"}, nil) + `"}`)
	c.expect(map[string]any{"op": "authed", "id": "a1", "exp": float64(exp.Unix())})
	c.send(`{"op":"subscribe","id":"s1","channels":["trades:K1","trades:Z"]}`)
	c.expect(map[string]any{"op": "error", "id": "s1", "code": "forbidden", "channel": "trades:Z"})
	c.send(`{"op":"subscribe","id":"s2","channels":["trades:*"]}`)
	c.expect(map[string]any{"op": "error", "id": "s2", "code": "forbidden", "channel": "trades:*"})
	c.send(`{"op":"subscribe","id":"s3","channels":["trades:K1","trades:pub1"]}`)
	c.expect(map[string]any{"op": "subscribed", "id": "s3"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "Z", "no"), kafkatest.Record("trades", 0, "K1", "yes"))
	c.expect(map[string]any{"op": "message", "channel": "trades:K1"})
}

func TestAuthOptionalPublic(t *testing.T) {
	f := start(t, withAuth(config.AuthOptional))
	c := f.connect()
	c.send(`{"op":"subscribe","id":"s1","channels":["trades:pub1","trades:X"]}`)
	c.expect(map[string]any{"op": "error", "id": "s1", "code": "unauthorized", "channel": "trades:X"})
	c.send(`{"op":"subscribe","id":"s2","channels":["trades:pub1"]}`)
	c.expect(map[string]any{"op": "subscribed", "id": "s2"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "X", "no"), kafkatest.Record("trades", 0, "pub1", "yes"))
	c.expect(map[string]any{"op": "message", "channel": "trades:pub1"})
}

// TestAuthFailures: each refused token gets its code and the connection stays; the third
// failure in a row closes with 4003 after the reply.
func TestAuthFailures(t *testing.T) {
	f := start(t, withAuth(config.AuthOptional))
	hour := time.Now().Add(time.Hour)
	wrongSig, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": testIssuer, "aud": testAudience,
		"sub": "u", "exp": hour.Unix()}).SignedString([]byte("another-secret-another-secret-0123"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, code string
	}{
		{"expired", token(t, time.Now().Add(-time.Hour), nil, nil), "token_expired"},
		{"bad signature", wrongSig, "invalid_token"},
		{"wrong issuer", token(t, hour, nil, jwt.MapClaims{"iss": "https://evil.test"}), "invalid_token"},
		{"wrong audience", token(t, hour, nil, jwt.MapClaims{"aud": "other"}), "invalid_token"},
		{"malformed", "not.a.jwt", "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.connect()
			c.send(`{"op":"auth","id":"a","token":"` + tt.token + `"}`)
			got := c.expect(map[string]any{"op": "error", "id": "a", "code": tt.code})
			if strings.Contains(got["message"].(string), "eyJ") {
				t.Errorf("message %q quotes the token", got["message"])
			}
			c.send(`{"op":"ping","id":"p"}`)
			c.expect(map[string]any{"op": "pong", "id": "p"})
		})
	}
	if n := testutil.ToFloat64(f.m.Auth.WithLabelValues(metrics.AuthSourceMessage, metrics.ResultFailed)); n != float64(len(tests)) {
		t.Errorf("ws_auth_total{failed} = %v, want %d", n, len(tests))
	}
	if n := testutil.ToFloat64(f.m.AuthFailures.WithLabelValues(auth.ReasonExpired)); n != 1 {
		t.Errorf("ws_auth_failures_total{expired} = %v, want 1", n)
	}

	c := f.connect()
	for i := range maxAuthFailures {
		c.send(`{"op":"auth","id":"a","token":"x.y.z"}`)
		c.expect(map[string]any{"op": "error", "code": "invalid_token"})
		_ = i
	}
	c.expectClose(StatusAuthFailed, "auth_failed")
}

// TestAuthRefreshNarrows: a refresh that drops a channel unsubscribes it, announced before
// the authed reply, and its records stop.
func TestAuthRefreshNarrows(t *testing.T) {
	f := start(t, withAuth(config.AuthRequired))
	c := f.connect()
	exp := time.Now().Add(time.Hour)
	c.send(`{"op":"auth","id":"a1","token":"` + token(t, exp, []string{"trades:A", "trades:B"}, nil) + `"}`)
	c.send(`{"op":"subscribe","id":"s1","channels":["trades:A","trades:B"]}`)
	c.expect(map[string]any{"op": "authed", "id": "a1"})
	c.expect(map[string]any{"op": "subscribed", "id": "s1"})
	c.send(`{"op":"auth","id":"a2","token":"` + token(t, exp, []string{"trades:A"}, nil) + `"}`)
	got := c.expect(map[string]any{"op": "unsubscribed", "reason": "forbidden"})
	if chs, _ := got["channels"].([]any); len(chs) != 1 || chs[0] != "trades:B" {
		t.Fatalf("unsubscribed channels %v, want [trades:B]", got["channels"])
	}
	c.expect(map[string]any{"op": "authed", "id": "a2"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "B", "no"), kafkatest.Record("trades", 0, "A", "yes"))
	c.expect(map[string]any{"op": "message", "channel": "trades:A"})
}

// TestAuthExpiry: without a refresh the connection closes with 4001 at exp + grace, not
// before exp; a refresh moves the close.
func TestAuthExpiry(t *testing.T) {
	f := start(t, withAuth(config.AuthRequired))
	exp := time.Now().Truncate(time.Second).Add(2 * time.Second)

	stale := f.connect()
	stale.send(`{"op":"auth","id":"a","token":"` + token(t, exp, []string{"trades:*"}, nil) + `"}`)
	stale.expect(map[string]any{"op": "authed"})
	refreshed := f.connect()
	refreshed.send(`{"op":"auth","id":"a","token":"` + token(t, exp, []string{"trades:*"}, nil) + `"}`)
	refreshed.expect(map[string]any{"op": "authed"})
	refreshed.send(`{"op":"auth","id":"b","token":"` + token(t, exp.Add(time.Hour), []string{"trades:*"}, nil) + `"}`)
	refreshed.expect(map[string]any{"op": "authed", "id": "b"})

	stale.expectClose(StatusTokenExpired, "token_expired")
	if now := time.Now(); now.Before(exp) {
		t.Fatalf("closed at %v, before exp %v", now, exp)
	}
	refreshed.send(`{"op":"ping","id":"p"}`)
	refreshed.expect(map[string]any{"op": "pong", "id": "p"})
}

func TestAuthTimeout(t *testing.T) {
	f := start(t, withAuth(config.AuthRequired))
	c := f.connect()
	began := time.Now()
	c.expectClose(StatusAuthTimeout, "auth_timeout")
	if d := time.Since(began); d < 900*time.Millisecond {
		t.Fatalf("closed after %v, want about WS_AUTH_TIMEOUT (1s)", d)
	}
}

func TestAuthMaxSubscriptionsClaim(t *testing.T) {
	f := start(t, withAuth(config.AuthRequired))
	c := f.connect()
	tok := token(t, time.Now().Add(time.Hour), nil, jwt.MapClaims{"ws": map[string]any{"subscribe": []string{"trades:*"}, "max_subscriptions": 2}})
	c.send(`{"op":"auth","id":"a","token":"` + tok + `"}`)
	c.expect(map[string]any{"op": "authed"})
	c.send(`{"op":"subscribe","id":"s","channels":["trades:1","trades:2","trades:3"]}`)
	c.expect(map[string]any{"op": "error", "id": "s", "code": "too_many_subscriptions",
		"message": "subscribe would pass the limit of 2 channels per client"})
}

// TestAuthHeader: the bearer subprotocol authenticates before the upgrade: 401 for a bad
// token, 400 without ws_poc.v1, else ws_poc.v1 back and an authed first line.
func TestAuthHeader(t *testing.T) {
	f := start(t, withAuth(config.AuthRequired))
	exp := time.Now().Add(time.Hour)
	good := token(t, exp, []string{"trades:*"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	ws, resp, err := websocket.Dial(ctx, "ws://"+f.addr+"/ws", &websocket.DialOptions{Subprotocols: []string{Subprotocol, "bearer." + good}})
	if err != nil {
		t.Fatalf("dial with a good token: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != Subprotocol {
		t.Fatalf("Sec-WebSocket-Protocol = %q, want %q", p, Subprotocol)
	}
	c := &client{t: t, ws: ws}
	got := c.expect(map[string]any{"op": "authed", "exp": float64(exp.Unix())})
	if _, ok := got["id"]; ok {
		t.Errorf("authed line %v has an id", got)
	}
	c.send(`{"op":"subscribe","id":"s","channels":["trades:*"]}`)
	c.expect(map[string]any{"op": "subscribed", "id": "s"})

	tests := []struct {
		name   string
		protos []string
		status int
		body   string
	}{
		{"bad token", []string{Subprotocol, "bearer.x.y.z"}, http.StatusUnauthorized, "invalid_token"},
		{"expired", []string{Subprotocol, "bearer." + token(t, time.Now().Add(-time.Hour), nil, nil)}, http.StatusUnauthorized, "token_expired"},
		{"without ws_poc.v1", []string{"bearer." + good}, http.StatusBadRequest, Subprotocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, resp, err := websocket.Dial(ctx, "ws://"+f.addr+"/ws", &websocket.DialOptions{Subprotocols: tt.protos})
			if err == nil || resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("dial = %v, response %v, want status %d", err, resp, tt.status)
			}
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), tt.body) {
				t.Errorf("body %q, want it to name %q", body, tt.body)
			}
			if tt.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if n := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues(RejectAuth)); n != float64(len(tests)) {
		t.Errorf("ws_connections_rejected_total{auth} = %v, want %d", n, len(tests))
	}
}

// TestAuthOff: the default: an auth request is invalid_request, a bearer protocol is
// ignored and ws_poc.v1 still selected.
func TestAuthOff(t *testing.T) {
	f := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://"+f.addr+"/ws", &websocket.DialOptions{Subprotocols: []string{Subprotocol, "bearer.x.y.z"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != Subprotocol {
		t.Fatalf("Sec-WebSocket-Protocol = %q, want %q", p, Subprotocol)
	}
	c := &client{t: t, ws: ws}
	c.send(`{"op":"auth","id":"a","token":"x"}`)
	c.expect(map[string]any{"op": "error", "id": "a", "code": "invalid_request", "message": "authentication is off on this server"})
	c.send(`{"op":"subscribe","id":"s","channels":["trades:any"]}`)
	c.expect(map[string]any{"op": "subscribed", "id": "s"})
}
