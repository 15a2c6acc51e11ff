package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
)

// tcp opens a plain TCP connection to the server, closed with the test.
func (f *fixture) tcp(t *testing.T) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

// closedWithin reports whether the server closes nc (EOF or reset, no data)
// within d.
func closedWithin(nc net.Conn, d time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	_, err := nc.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// get sends a keep-alive GET on nc and returns the response status.
func get(t *testing.T, nc net.Conn, br *bufio.Reader, path, extra string) int {
	t.Helper()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+extra+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = nc.SetDeadline(time.Time{})
	return resp.StatusCode
}

// TestIdleKeepAliveIsClosed: a keep-alive connection left idle after a request
// is closed after WS_HTTP_IDLE_TIMEOUT.
func TestIdleKeepAliveIsClosed(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.HTTPIdleTimeout = 300 * time.Millisecond })
	nc := f.tcp(t)
	if status := get(t, nc, bufio.NewReader(nc), "/healthz", ""); status != http.StatusOK {
		t.Fatalf("GET /healthz = %d", status)
	}
	if !closedWithin(nc, 3*time.Second) {
		t.Fatal("idle keep-alive connection still open 3s after a 300ms idle timeout")
	}
}

// TestConnectionsPerIPAreCapped: past WS_HTTP_MAX_CONNS_PER_IP connections from
// one address that have not upgraded, a new one is closed at accept and
// counted; upgraded connections do not count.
func TestConnectionsPerIPAreCapped(t *testing.T) {
	const maxPerIP = 3
	f := start(t, func(c *config.Config, _ *setup) { c.HTTPMaxConnsPerIP = maxPerIP })
	counted := func() int {
		f.srv.perIP.mu.Lock()
		defer f.srv.perIP.mu.Unlock()
		return f.srv.perIP.perIP["127.0.0.1"]
	}
	await.True(t, 20*time.Second, func() bool { return counted() == 0 }, "start's requests closed")
	var idle []net.Conn
	for range maxPerIP {
		idle = append(idle, f.tcp(t)) // sends nothing: a handshake that never comes
	}
	await.True(t, 20*time.Second, func() bool { return counted() == maxPerIP }, "the idle connections accepted")
	over := f.tcp(t)
	if !closedWithin(over, 2*time.Second) {
		t.Fatal("a connection past the per-IP cap was not closed at accept")
	}
	if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("ip_limit")); got != 1 {
		t.Fatalf("rejected{ip_limit} = %v, want 1", got)
	}
	for _, nc := range idle {
		_ = nc.Close()
	}
	await.True(t, 20*time.Second, func() bool {
		nc, err := net.DialTimeout("tcp", f.addr, time.Second)
		if err != nil {
			return false
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		return err == nil && resp.StatusCode == http.StatusOK
	}, "a slot free again")
	// WebSocket connections are released at the upgrade: more than the cap is fine.
	for range 2 * maxPerIP {
		c := f.connect()
		c.send(`{"op":"ping"}`)
		c.expect(map[string]any{"op": "pong"})
	}
}

// TestHeaderLimit: a header block larger than WS_MAX_HEADER_BYTES is answered 431.
func TestHeaderLimit(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.MaxHeaderBytes = 1024 })
	small := f.tcp(t)
	if status := get(t, small, bufio.NewReader(small), "/healthz", "X-Token: "+strings.Repeat("t", 512)+"\r\n"); status != http.StatusOK {
		t.Fatalf("GET with 512 bytes of headers = %d, want 200", status)
	}
	big := f.tcp(t)
	// net/http allows 4 KiB of slack over MaxHeaderBytes; 32 KiB is well past it.
	if status := get(t, big, bufio.NewReader(big), "/ws", "X-Token: "+strings.Repeat("t", 32<<10)+"\r\n"); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("GET with 32 KiB of headers = %d, want 431", status)
	}
}

// TestRefusalsCloseTheConnection: every answer of /ws but 101 carries
// Connection: close and the server closes the socket after it; a plain POST is
// 426 like a plain GET.
func TestRefusalsCloseTheConnection(t *testing.T) {
	tests := []struct {
		name    string
		opt     option
		request string
		status  int
	}{
		{name: "plain GET", request: "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", status: http.StatusUpgradeRequired},
		{name: "plain POST", request: "POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", status: http.StatusUpgradeRequired},
		{name: "cross origin", opt: func(c *config.Config, _ *setup) { c.AllowedOrigins = []string{"example.com"} },
			request: upgradeRequest("Origin: http://evil.test\r\n"), status: http.StatusForbidden},
		{name: "cpu", opt: func(_ *config.Config, o *setup) { o.admission = allow{ok: false, retry: time.Second} },
			request: upgradeRequest(""), status: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []option
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			f := start(t, opts...)
			nc := f.tcp(t)
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, tt.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || !resp.Close {
				t.Fatalf("status %d, Connection %q; want %d and close", resp.StatusCode, resp.Header.Get("Connection"), tt.status)
			}
			if !closedWithin(nc, 2*time.Second) {
				t.Fatal("the server kept the connection after refusing it")
			}
		})
	}
}

func upgradeRequest(extra string) string {
	return "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// TestOverCapacityReleasedAtOnce: a client over WS_MAX_CONNECTIONS that never
// answers the 1013 close frame still has its socket closed right after it.
func TestOverCapacityReleasedAtOnce(t *testing.T) {
	f := start(t, func(_ *config.Config, o *setup) { o.maxConns = 1 })
	first := f.connect()
	began := time.Now()
	second := f.rawDial(0)
	op, p, err := second.readFrame(5 * time.Second)
	if err != nil || op != opClose || len(p) < 2 || websocket.StatusCode(int(p[0])<<8|int(p[1])) != websocket.StatusTryAgainLater ||
		string(p[2:]) != "over_capacity" {
		t.Fatalf("frame %x %q, %v; want close 1013 over_capacity", op, p, err)
	}
	if !closedWithin(second.nc, 2*time.Second) {
		t.Fatal("the over-capacity socket was not closed after the 1013 frame")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("over-capacity socket released after %v", took)
	}
	first.send(`{"op":"ping"}`)
	first.expect(map[string]any{"op": "pong"})
}

// TestOverCapacityIgnoresPings: a ping that arrives with the handshake of a
// client over WS_MAX_CONNECTIONS is read during the 1013 close; it gets no
// pong and, past the rate limit, must not start a rate-limit close on the
// connection that was never attached (no ws, no cork: a nil dereference in a
// goroutine would crash the server). A burst of 0 (below what Validate
// allows) makes the bucket dry from the first ping: with a full bucket the
// first ping's pong fails after the close frame and ends Close's wait.
func TestOverCapacityIgnoresPings(t *testing.T) {
	f := startWith(t, nil, func(s *Server) { s.cfg.RateLimit, s.cfg.RateBurst = 1, 0 },
		func(_ *config.Config, o *setup) { o.maxConns = 1 })
	f.connect() // holds the one slot; it sends nothing (its bucket is dry too)
	nc, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The pings go in the handshake's segment: the server holds them as
	// read-ahead, and Close reads them while it waits for the client's close.
	req := []byte(upgradeRequest(""))
	for i := range 5 {
		req = append(req, frame(opPing, []byte(fmt.Sprint(i)), true)...)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake = %v, %v", resp, err)
	}
	for {
		op, p, err := c.readFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		if op == opPong {
			t.Fatalf("pong %q from an over-capacity connection", p)
		}
		if op == opClose {
			if len(p) < 2 || websocket.StatusCode(int(p[0])<<8|int(p[1])) != websocket.StatusTryAgainLater {
				t.Fatalf("close %q, want 1013", p)
			}
			break
		}
	}
	if !closedWithin(nc, 2*time.Second) {
		t.Fatal("the over-capacity socket was not closed after the 1013 frame")
	}
	time.Sleep(200 * time.Millisecond) // a rate-limit close would have crashed by now
	if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues("rate_limit")); got != 0 {
		t.Fatalf("disconnects{rate_limit} = %v for a connection never served", got)
	}
}

// flakyListener fails its first Accept the way a process out of descriptors
// does; net/http logs and retries it.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failed.CompareAndSwap(false, true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsAreCounted: a failed Accept is counted in
// ws_accept_errors_total and the server goes on serving.
func TestAcceptErrorsAreCounted(t *testing.T) {
	f := startOn(t, func(ln net.Listener) net.Listener { return &flakyListener{Listener: ln} })
	if got := testutil.ToFloat64(f.m.AcceptErrors); got != 1 {
		t.Fatalf("ws_accept_errors_total = %v, want 1", got)
	}
	f.waitStatus("/healthz", http.StatusOK)
}
