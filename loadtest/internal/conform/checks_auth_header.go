package conform

// Checks of the header form of auth: Sec-WebSocket-Protocol: ws_poc.v1, bearer.<jwt>.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// protocolName is the subprotocol a bearer token travels beside.
const protocolName = "ws_poc.v1"

func checkAuthHeaderValid(ctx context.Context, s *suite) (string, error) {
	key, err := s.privateKey("header")
	if err != nil {
		return "", err
	}
	ch := s.channel(key)
	tok, exp, err := s.validToken(ch)
	if err != nil {
		return "", err
	}
	c, resp, err := s.dial(ctx, dialOptions{protocols: []string{protocolName, "bearer." + tok}})
	if err != nil {
		return "", err
	}
	defer c.close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != protocolName {
		return "", fmt.Errorf("Sec-WebSocket-Protocol %q in the 101, want %q", clip([]byte(got)), protocolName)
	}
	first, err := c.waitFor(ctx, "the first line", func(Envelope) bool { return true })
	if err != nil {
		return "", err
	}
	if want := authedBytes(nil, exp); string(first.Raw) != want {
		return "", fmt.Errorf("first line %s, want %s", first.Raw, want)
	}
	if err := c.subscribe(ctx, "s1", ch); err != nil {
		return "", fmt.Errorf("the header token's channel: %w", err)
	}
	if _, err := s.deliver(ctx, c, key); err != nil {
		return "", err
	}
	return "", nil
}

// handshake sends an upgrade request offering protocols (a Sec-WebSocket-Protocol value)
// on a connection of its own and returns the response and its body; it does not upgrade.
func (s *suite) handshake(ctx context.Context, protocols string) (*http.Response, string, error) {
	conn, err := s.netDial(ctx, 0)
	if err != nil {
		return nil, "", err
	}
	defer conn.Close()
	u, _ := url.Parse(s.cfg.URL) // validated in Config.Validate
	keyBytes := make([]byte, 16)
	_, _ = rand.Read(keyBytes)
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\nUser-Agent: loadtest-conform\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(keyBytes), protocols)
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, "", fmt.Errorf("write the upgrade request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, "", fmt.Errorf("read the upgrade response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, "", nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, "", fmt.Errorf("read the %d body: %w", resp.StatusCode, err)
	}
	return resp, string(body), nil
}

// expectHandshake checks that an upgrade offering protocols is refused with status,
// Connection: close, a body naming bodyCode (when set) and, for 401, the Bearer challenge.
func (s *suite) expectHandshake(ctx context.Context, what, protocols string, status int, bodyCode string) error {
	resp, body, err := s.handshake(ctx, protocols)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	const challenge = `Bearer error="invalid_token"`
	switch {
	case resp.StatusCode != status:
		return fmt.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
	case !resp.Close:
		return fmt.Errorf("%s: %d without Connection: close (a refused upgrade releases its socket)", what, status)
	case bodyCode != "" && !strings.Contains(body, bodyCode):
		return fmt.Errorf("%s: body %q does not name %s", what, clip([]byte(body)), bodyCode)
	case status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), challenge):
		return fmt.Errorf("%s: WWW-Authenticate %q, want %s", what, resp.Header.Get("WWW-Authenticate"), challenge)
	}
	return nil
}

func checkAuthHeaderRefused(ctx context.Context, s *suite) (string, error) {
	bad, err := s.otherSecretToken()
	if err != nil {
		return "", err
	}
	expired := s.claims()
	expired.ExpiresAt = time.Now().Add(-s.cfg.Auth.Leeway - time.Hour)
	expired.IssuedAt = expired.ExpiresAt.Add(-time.Hour)
	old, err := s.hs256(expired)
	if err != nil {
		return "", err
	}
	cases := []struct{ what, token, code string }{
		{"signed with another secret", bad, "invalid_token"},
		{"expired", old, "token_expired"},
		{"malformed", "not-a-jwt", "invalid_token"},
	}
	for _, tc := range cases {
		if err := s.expectHandshake(ctx, tc.what, protocolName+", bearer."+tc.token, http.StatusUnauthorized, tc.code); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d cases", len(cases)), nil
}

func checkAuthHeaderProtocols(ctx context.Context, s *suite) (string, error) {
	tok, _, err := s.validToken()
	if err != nil {
		return "", err
	}
	if err := s.expectHandshake(ctx, "bearer.<valid jwt> alone", "bearer."+tok, http.StatusBadRequest, ""); err != nil {
		return "", err
	}
	c, resp, err := s.dial(ctx, dialOptions{protocols: []string{protocolName}})
	if err != nil {
		return "", fmt.Errorf("%s alone: %w", protocolName, err)
	}
	defer c.close()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != protocolName {
		return "", fmt.Errorf("%s alone: Sec-WebSocket-Protocol %q in the 101, want %q", protocolName, got, protocolName)
	}
	if err := c.ping(ctx, "p"); err != nil {
		return "", fmt.Errorf("%s alone: %w", protocolName, err)
	}
	if it := c.items(); len(it) > 0 && it[0].env.Op == "authed" {
		return "", fmt.Errorf("%s alone: first line %s, want no authed line without a token", protocolName, it[0].env.Raw)
	}
	return "", nil
}
