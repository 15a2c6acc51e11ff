package e2etest

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/token"
)

// TestAuthClients: with WS_AUTH=required, real clients present a token both ways the
// contract offers, on both variants. Node's ws authenticates by first message (auth and
// subscribe pipelined), then refreshes with a token that no longer allows the channel and
// sees it unsubscribed before the new authed; it also offers the token as a subprotocol
// (ws_poc.v1 answered, authed first) and sees a refused one answered 401. Headless
// Chromium does the subprotocol form from the page's own JavaScript, the only form a
// browser has besides the first message: the socket opens, authed comes first and a
// subscribe delivers a record; a refused token never opens (error, close 1006).
func TestAuthClients(t *testing.T) {
	node := requireBrowser(t)
	dir := e2eDir(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			env, _ := authSettings("required", "trades:public*", nil, nil)
			broker := startBroker(t)
			srv := startServer(t, v.name, binary(t, v.envVar, v.name), broker, env...)
			prod := newProducer(t, broker)

			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			key := uniqueKey("auth")
			channel := "trades:" + key
			tok, exp := mintToken(t, authSecret, time.Hour, channel, "tickers:*")
			refresh, refreshExp := mintToken(t, authSecret, 2*time.Hour, "tickers:*")
			bad, _ := mintToken(t, "another-secret-0123456789abcdef-0123", time.Hour, channel)

			// Both clients at once; one record reaches all three good connections.
			nodeOut, nodeWait := startNode(ctx, t, node, dir, "ws-auth-client.mjs", srv.wsURL(), channel,
				tok, strconv.FormatInt(exp, 10), refresh, strconv.FormatInt(refreshExp, 10), bad, "15000")
			page := srv.httpURL() + "healthz" // same origin as /ws; the demo page would open a socket of its own
			brOut, brWait := startNode(ctx, t, node, dir, "browser-auth.mjs", page, srv.wsURL(), channel,
				tok, strconv.FormatInt(exp, 10), bad, filepath.Join(t.TempDir(), "profile"), "20000")
			if _, err := nodeOut.waitLine(ctx, func(l string) bool { return l == "READY" }); err != nil {
				t.Fatalf("node ws never authenticated and subscribed: %v\n%s", err, nodeWait())
			}
			if _, err := brOut.waitLine(ctx, func(l string) bool { return l == "READY" }); err != nil {
				t.Fatalf("browser never authenticated and subscribed: %v\n%s", err, brWait())
			}
			value := fmt.Sprintf(`{"price":"42.5","key":%q}`, key)
			produce(t, prod, "trades", key, value)

			var nodeSum struct {
				MessageAuthed, MessageSubscribed, MessageMessage string
				RefreshUnsubscribed, RefreshAuthed               string
				HeaderProtocol, HeaderAuthed, HeaderSubscribed   string
				HeaderMessage                                    string
				BadStatus                                        int
				BadWWWAuthenticate, BadBody                      string
			}
			scriptSummary(ctx, t, "node ws", nodeOut, nodeWait, &nodeSum)
			wantLine(t, "node, first message: authed", nodeSum.MessageAuthed, map[string]any{"op": "authed", "id": "a", "exp": exp})
			wantLine(t, "node, first message: subscribed", nodeSum.MessageSubscribed, map[string]any{"op": "subscribed", "id": "s", "channels": []string{channel}})
			wantMessage(t, "node, first message", nodeSum.MessageMessage, channel, value)
			wantLine(t, "node, refresh: unsubscribed", nodeSum.RefreshUnsubscribed, map[string]any{"op": "unsubscribed", "channels": []string{channel}, "reason": "forbidden"})
			wantLine(t, "node, refresh: authed", nodeSum.RefreshAuthed, map[string]any{"op": "authed", "id": "a2", "exp": refreshExp})
			if nodeSum.HeaderProtocol != "ws_poc.v1" {
				t.Errorf("node, header: protocol %q, want ws_poc.v1", nodeSum.HeaderProtocol)
			}
			wantLine(t, "node, header: first line", nodeSum.HeaderAuthed, map[string]any{"op": "authed", "exp": exp})
			wantLine(t, "node, header: subscribed", nodeSum.HeaderSubscribed, map[string]any{"op": "subscribed", "id": "s", "channels": []string{channel}})
			wantMessage(t, "node, header", nodeSum.HeaderMessage, channel, value)
			if nodeSum.BadStatus != 401 || nodeSum.BadWWWAuthenticate != `Bearer error="invalid_token"` || !strings.HasPrefix(nodeSum.BadBody, "invalid_token") {
				t.Errorf("node, refused token: status %d, WWW-Authenticate %q, body %q; want 401, Bearer error=\"invalid_token\", a body starting invalid_token",
					nodeSum.BadStatus, nodeSum.BadWWWAuthenticate, nodeSum.BadBody)
			}

			var brSum struct {
				Bad struct {
					Opened, Errored bool
					CloseCode       int
				}
				BadConsole                            []string
				Protocol, Authed, Subscribed, Message string
			}
			scriptSummary(ctx, t, "browser", brOut, brWait, &brSum)
			if brSum.Bad.Opened || !brSum.Bad.Errored || brSum.Bad.CloseCode != 1006 {
				t.Errorf("browser, refused token: %+v, want an error and close 1006, never open", brSum.Bad)
			}
			if brSum.Protocol != "ws_poc.v1" {
				t.Errorf("browser: protocol %q, want ws_poc.v1", brSum.Protocol)
			}
			wantLine(t, "browser: first line", brSum.Authed, map[string]any{"op": "authed", "exp": exp})
			wantLine(t, "browser: subscribed", brSum.Subscribed, map[string]any{"op": "subscribed", "id": "s", "channels": []string{channel}})
			wantMessage(t, "browser", brSum.Message, channel, value)
			t.Logf("Chromium on the refused token: %q", brSum.BadConsole)

			// The server's side: the two refusals were the header tokens (node's and the
			// browser's, which a page cannot see as a status), answered before the upgrade.
			body := getMetrics(ctx, t, srv)
			for _, m := range []struct {
				name   string
				labels []string
				want   float64
			}{
				{"ws_auth_total", []string{`source="message"`, `result="ok"`}, 2},
				{"ws_auth_total", []string{`source="header"`, `result="ok"`}, 2},
				{"ws_auth_total", []string{`source="header"`, `result="failed"`}, 2},
				{"ws_auth_failures_total", []string{`reason="signature"`}, 2},
				{"ws_connections_rejected_total", []string{`reason="auth"`}, 2},
			} {
				if got, ok := metricValue(body, m.name, m.labels...); !ok || got != m.want {
					t.Errorf("%s{%s} = %v (found %v), want %v: %s", m.name, strings.Join(m.labels, ","), got, ok, m.want, metricLines(body, m.name))
				}
			}
		})
	}
}

// mintToken signs an HS256 token for the auth settings of auth_test.go with secret,
// allowing channels, and returns it with its exp.
func mintToken(t *testing.T, secret string, ttl time.Duration, channels ...string) (string, int64) {
	t.Helper()
	now := time.Now()
	c := token.Claims{Issuer: authIssuer, Audience: authAudience, Subject: "e2e-clients",
		IssuedAt: now, ExpiresAt: now.Add(ttl), Channels: channels}
	tok, err := token.Mint(c, token.Signer{Alg: "HS256", Key: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c.ExpiresAt.Unix()
}

// scriptSummary waits for a script to exit 0 and decodes the JSON summary it printed last.
func scriptSummary(ctx context.Context, t *testing.T, who string, out *lineWaiter, wait func() string, v any) {
	t.Helper()
	if msg := wait(); msg != "" {
		t.Fatalf("%s: %s\nstdout:\n%s", who, msg, out.all())
	}
	line, err := out.waitLine(ctx, func(l string) bool { return strings.HasPrefix(l, "{") })
	if err != nil {
		t.Fatalf("%s printed no summary: %v\n%s", who, err, out.all())
	}
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("%s summary %s: %v", who, line, err)
	}
}

// wantLine checks that a server line holds exactly the fields of want.
func wantLine(t *testing.T, what, line string, want map[string]any) {
	t.Helper()
	var got, norm map[string]any
	b, _ := json.Marshal(want)
	_ = json.Unmarshal(b, &norm)
	if err := json.Unmarshal([]byte(line), &got); err != nil || !reflect.DeepEqual(got, norm) {
		t.Errorf("%s: %s, want %s", what, line, b)
	}
}

// wantMessage checks that a server line is the produced record on channel.
func wantMessage(t *testing.T, what, line, channel, value string) {
	t.Helper()
	e, err := conform.ParseLine([]byte(line))
	if err != nil || e.Op != "message" || e.Channel != channel || e.Topic != "trades" || string(e.Data) != value {
		t.Errorf("%s: received %q (%v), want a message on %s with data %s", what, line, err, channel, value)
	}
}
