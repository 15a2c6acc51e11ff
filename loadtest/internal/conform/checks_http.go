package conform

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
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

// plainHTTPClient makes one connection per request and keeps none: an idle keep-alive
// connection of the suite would count against the server's per-address cap of
// connections that have not upgraded (WS_HTTP_MAX_CONNS_PER_IP). It has no Timeout
// (coder/websocket refuses one, as it would cut an upgraded connection): requests are
// bounded by their context.
func plainHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// httpDo sends one request with the suite's client and returns the response with its
// body read and closed.
func (s *suite) httpDo(ctx context.Context, method, target string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", target, err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}

func (s *suite) httpGet(ctx context.Context, target string) (*http.Response, error) {
	return s.httpDo(ctx, http.MethodGet, target, nil)
}

func checkReady(ctx context.Context, s *suite) (string, error) {
	target := s.httpURL("/readyz")
	start := time.Now()
	for {
		resp, err := s.httpGet(ctx, target)
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

// rawHTTP sends one HTTP/1.1 request, keep-alive as far as the client is concerned, on a
// connection of its own, and returns the response (body read) and whether the server then
// closed the connection within a second.
func (s *suite) rawHTTP(ctx context.Context, method, path string, h http.Header) (*http.Response, bool, error) {
	conn, err := s.netDial(ctx, 0)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	u, _ := url.Parse(s.cfg.URL)
	req, err := http.NewRequestWithContext(ctx, method, (&url.URL{Scheme: "http", Host: u.Host, Path: path}).String(), nil)
	if err != nil {
		return nil, false, err
	}
	req.Header = h.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("User-Agent", "loadtest-conform")
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := req.Write(conn); err != nil {
		return nil, false, fmt.Errorf("%s %s: %w", method, path, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: read the response: %w", method, path, err)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, false, fmt.Errorf("%s %s: read the body: %w", method, path, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = br.Read(make([]byte, 1))
	var ne net.Error
	closed := err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return resp, closed, nil
}

// expectRefusal sends a request that /ws must refuse with status, with `Connection:
// close` and the socket closed after the answer.
func (s *suite) expectRefusal(ctx context.Context, method string, h http.Header, status int) error {
	u, _ := url.Parse(s.cfg.URL)
	resp, closed, err := s.rawHTTP(ctx, method, u.Path, h)
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode != status:
		return fmt.Errorf("%s %s: status %d, want %d", method, u.Path, resp.StatusCode, status)
	case !resp.Close:
		return fmt.Errorf("%s %s: %d without Connection: close (a refused request must release its socket)", method, u.Path, resp.StatusCode)
	case !closed:
		return fmt.Errorf("%s %s: %d with Connection: close, but the socket is still open after 1s", method, u.Path, resp.StatusCode)
	}
	return nil
}

func checkPlainHTTP(ctx context.Context, s *suite) (string, error) {
	return "", s.expectRefusal(ctx, http.MethodGet, nil, http.StatusUpgradeRequired)
}

// checkPlainPost: any method without an upgrade is answered 426, as GET is.
func checkPlainPost(ctx context.Context, s *suite) (string, error) {
	return "", s.expectRefusal(ctx, http.MethodPost, nil, http.StatusUpgradeRequired)
}

// checkHeaderLimit sends a request whose headers are well past WS_MAX_HEADER_BYTES
// (net/http allows 4 KiB of slack above it) and expects 431; half the limit must still
// be served (426 for a plain GET of /ws), so the limit leaves room for a token.
func checkHeaderLimit(ctx context.Context, s *suite) (string, error) {
	target := s.httpURL("")
	half := s.cfg.MaxHeaderBytes / 2
	resp, err := s.httpDo(ctx, http.MethodGet, target, http.Header{"X-Conform-Pad": {strings.Repeat("a", half)}})
	if err != nil {
		return "", fmt.Errorf("headers of %d bytes: %w", half, err)
	}
	if resp.StatusCode != http.StatusUpgradeRequired {
		return "", fmt.Errorf("headers of %d bytes (half of WS_MAX_HEADER_BYTES): status %d, want 426", half, resp.StatusCode)
	}
	big := max(64<<10, 2*s.cfg.MaxHeaderBytes+8192)
	resp, err = s.httpDo(ctx, http.MethodGet, target, http.Header{"X-Conform-Pad": {strings.Repeat("a", big)}})
	if err != nil {
		return "", fmt.Errorf("headers of %d bytes: %w (want 431)", big, err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		return "", fmt.Errorf("headers of %d bytes (WS_MAX_HEADER_BYTES %d): status %d, want 431", big, s.cfg.MaxHeaderBytes, resp.StatusCode)
	}
	return fmt.Sprintf("%d bytes served, %d bytes answered 431", half, big), nil
}

// tcpDial opens a plain TCP connection to the server's address.
func (s *suite) tcpDial(ctx context.Context) (net.Conn, error) {
	u, _ := url.Parse(s.cfg.URL) // validated in Config.Validate
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", hostPort(u))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", hostPort(u), err)
	}
	return c, nil
}

// hostPort is the address of a ws/wss URL, with the scheme's port when it names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "wss" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func idleBudget(c Config) time.Duration { return c.HTTPIdleTimeout + 8*time.Second }

// checkHTTPIdle sends GET /healthz on a keep-alive connection and expects the server to
// close it within WS_HTTP_IDLE_TIMEOUT (plus 2 s) of the response.
func checkHTTPIdle(ctx context.Context, s *suite) (string, error) {
	conn, err := s.netDial(ctx, 0)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	u, _ := url.Parse(s.cfg.URL)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadtest-conform\r\n\r\n", u.Host); err != nil {
		return "", fmt.Errorf("write GET /healthz: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", fmt.Errorf("read the /healthz response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("read the /healthz body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /healthz: status %d, want 200", resp.StatusCode)
	}
	start := time.Now()
	limit := s.cfg.HTTPIdleTimeout + 2*time.Second
	_ = conn.SetDeadline(start.Add(limit))
	n, err := br.Read(make([]byte, 1))
	idle := time.Since(start).Round(time.Millisecond)
	var ne net.Error
	switch {
	case err == nil:
		return "", fmt.Errorf("%d unexpected bytes on an idle connection", n)
	case errors.As(err, &ne) && ne.Timeout():
		return "", fmt.Errorf("an idle keep-alive connection is still open after %v (WS_HTTP_IDLE_TIMEOUT %v)", idle, s.cfg.HTTPIdleTimeout)
	}
	if resp.Close {
		return fmt.Sprintf("the server closed after the response (Connection: close), %v", idle), nil
	}
	return fmt.Sprintf("closed after %v idle (%v)", idle, err), nil
}

// checkIPLimit holds WS_HTTP_MAX_CONNS_PER_IP idle TCP connections: the next one must be
// closed at accept (EOF within 1 s) while the held ones stay, and once they are released
// a request is answered again.
func checkIPLimit(ctx context.Context, s *suite) (string, error) {
	// A server counts a connection it closed until its ConnState hook has run, which can
	// be just after the client saw the close: a connection of the previous check may
	// still count for a moment. Let it settle, and try a second time.
	var err error
	for try := 1; try <= 2; try++ {
		time.Sleep(250 * time.Millisecond)
		var detail string
		if detail, err = ipLimitOnce(ctx, s); err == nil {
			return detail, nil
		}
	}
	return "", err
}

func ipLimitOnce(ctx context.Context, s *suite) (string, error) {
	n := s.cfg.HTTPMaxConnsPerIP
	var held []net.Conn
	release := func() {
		for _, c := range held {
			c.Close()
		}
		held = nil
	}
	defer release()
	for i := range n {
		c, err := s.tcpDial(ctx)
		if err != nil {
			return "", fmt.Errorf("connection %d of %d: %w", i+1, n, err)
		}
		held = append(held, c)
	}
	extra, err := s.tcpDial(ctx)
	if err != nil {
		// Refused or reset during the handshake: closed at accept all the same.
		return fmt.Sprintf("%d held, the next refused at dial (%v)", n, err), nil
	}
	held = append(held, extra)
	start := time.Now()
	_ = extra.SetReadDeadline(start.Add(time.Second))
	_, err = extra.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil:
		return "", fmt.Errorf("connection %d (past WS_HTTP_MAX_CONNS_PER_IP %d): the server sent bytes before any request", n+1, n)
	case errors.As(err, &ne) && ne.Timeout():
		return "", fmt.Errorf("connection %d (past WS_HTTP_MAX_CONNS_PER_IP %d) is still open after 1s, want it closed at accept", n+1, n)
	}
	closedIn := time.Since(start).Round(time.Millisecond)
	for i, c := range held[:n] {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "", fmt.Errorf("held connection %d of %d ended (%v): the cap is lower than %d, or another connection of this address was open", i+1, n, err, n)
		}
	}
	release()
	// The server releases a slot when it sees the close; give it a moment.
	var last error
	for {
		resp, err := s.httpGet(ctx, s.httpURL("/healthz"))
		if err == nil && resp.StatusCode == http.StatusOK {
			return fmt.Sprintf("%d held, the next closed after %v, /healthz answered after the release", n, closedIn), nil
		}
		if err == nil {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no request answered after the held connections were released: %w", errors.Join(last, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
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
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	err = s.expectRefusal(ctx, http.MethodGet, http.Header{
		"Origin": {origin}, "Upgrade": {"websocket"}, "Connection": {"Upgrade"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {base64.StdEncoding.EncodeToString(key)},
	}, http.StatusForbidden)
	if err != nil {
		return "", fmt.Errorf("origin %s: %w", origin, err)
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
	// A client that ignores the close frame must not hold the socket: the server closes it
	// right after the frame, without waiting for the client's close.
	r, err := s.rawUpgrade(ctx, 0)
	if err != nil {
		return "", fmt.Errorf("connection %d: %w", n+2, err)
	}
	res := r.readUntilClose(closeDeadline(ctx, 5*time.Second))
	if res.code != int(websocket.StatusTryAgainLater) {
		r.conn.Close()
		return "", fmt.Errorf("connection %d: %v, want close 1013", n+2, res)
	}
	_ = r.conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = r.br.Read(make([]byte, 1))
	r.conn.Close()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return "", fmt.Errorf("connection %d: the socket is still open 1s after the 1013 close frame (not answered), want it closed at once", n+2)
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
				return fmt.Sprintf("%d accepted, the next closed with 1013 and released at once, a slot came back after they left", n), nil
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
