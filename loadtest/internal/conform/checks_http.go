package conform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"
)

// httpURL is the server's HTTP URL for path, derived from the WebSocket URL.
func (s *suite) httpURL(path string) string {
	u, _ := url.Parse(s.cfg.URL) // validated in Config.Validate
	if u.Scheme == "wss" {
		u.Scheme = "https"
	} else {
		u.Scheme = "http"
	}
	if path != "" {
		u.Path = path
	}
	u.RawQuery = ""
	return u.String()
}

func httpGet(ctx context.Context, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", target, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", target, err)
	}
	resp.Body.Close()
	return resp, nil
}

func checkReady(ctx context.Context, s *suite) (string, error) {
	target := s.httpURL("/readyz")
	start := time.Now()
	for {
		resp, err := httpGet(ctx, target)
		if err == nil && resp.StatusCode == http.StatusOK {
			return fmt.Sprintf("after %v", time.Since(start).Round(time.Millisecond)), nil
		}
		if err == nil {
			err = fmt.Errorf("get %s: status %d", target, resp.StatusCode)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("not ready before the deadline: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkPlainHTTP(ctx context.Context, s *suite) (string, error) {
	resp, err := httpGet(ctx, s.httpURL(""))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusUpgradeRequired {
		return "", fmt.Errorf("status %d, want 426", resp.StatusCode)
	}
	return "", nil
}

func checkNoOrigin(ctx context.Context, s *suite) (string, error) {
	return "", dialAndPing(ctx, s, "")
}

func checkSameOrigin(ctx context.Context, s *suite) (string, error) {
	u, _ := url.Parse(s.httpURL(""))
	origin := u.Scheme + "://" + u.Host
	if err := dialAndPing(ctx, s, origin); err != nil {
		return "", fmt.Errorf("origin %s: %w", origin, err)
	}
	return "Origin " + origin, nil
}

func checkCrossOrigin(ctx context.Context, s *suite) (string, error) {
	const origin = "http://conform-cross-origin.invalid"
	c, resp, err := s.dial(ctx, dialOptions{origin: origin})
	if err == nil {
		c.close()
		return "", fmt.Errorf("origin %s: upgrade accepted, want 403", origin)
	}
	if resp == nil {
		return "", fmt.Errorf("origin %s: %w (no HTTP response, want 403)", origin, err)
	}
	if resp.StatusCode != http.StatusForbidden {
		return "", fmt.Errorf("origin %s: status %d, want 403", origin, resp.StatusCode)
	}
	return "", nil
}

func dialAndPing(ctx context.Context, s *suite, origin string) error {
	c, _, err := s.dial(ctx, dialOptions{origin: origin})
	if err != nil {
		return err
	}
	defer c.close()
	return c.ping(ctx, "origin")
}

// checkCapacity fills the server to WS_MAX_CONNECTIONS, expects one more to be closed with
// 1013 over_capacity, then expects a slot to come back once the others leave.
func checkCapacity(ctx context.Context, s *suite) (string, error) {
	n := s.cfg.MaxConnections
	var conns []*client
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for i := range n {
		c, _, err := s.dial(ctx, dialOptions{})
		if err != nil {
			return "", fmt.Errorf("connection %d of %d: %w", i+1, n, err)
		}
		conns = append(conns, c)
		if err := c.ping(ctx, fmt.Sprintf("cap-%d", i)); err != nil {
			return "", fmt.Errorf("connection %d of %d (is another client connected?): %w", i+1, n, err)
		}
	}
	extra, resp, err := s.dial(ctx, dialOptions{})
	if err != nil {
		if resp != nil {
			return "", fmt.Errorf("connection %d: HTTP %d, want an upgrade closed with 1013", n+1, resp.StatusCode)
		}
		return "", fmt.Errorf("connection %d: %w", n+1, err)
	}
	conns = append(conns, extra)
	code, reason, err := extra.waitClose(ctx)
	if err != nil {
		return "", fmt.Errorf("connection %d: %w", n+1, err)
	}
	if code != websocket.StatusTryAgainLater || reason != "over_capacity" {
		return "", fmt.Errorf("connection %d: closed with %d %q, want 1013 \"over_capacity\"", n+1, code, reason)
	}
	for _, c := range conns {
		c.close()
	}
	conns = nil
	// The server counts a connection until its handler has finished; give it a moment.
	var last error
	for {
		c, _, err := s.dial(ctx, dialOptions{})
		if err == nil {
			err = c.ping(ctx, "cap-again")
			c.close()
			if err == nil {
				return fmt.Sprintf("%d accepted, the next closed with 1013, a slot came back after they left", n), nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no connection accepted after the others closed: %w", errors.Join(last, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
