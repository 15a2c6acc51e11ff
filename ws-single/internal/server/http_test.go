// This file is duplicated in ws-multi (internal/server/http_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

func upgradeRequest(extra string) string {
	return "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
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

func TestHealthAndDemoPage(t *testing.T) {
	f := start(t)
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		resp, err := f.get(path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %v, %v", path, resp, err)
		}
	}
	page, _ := web.ReadFile("web/index.html")
	for _, id := range []string{`id="status"`, `id="count"`, `id="messages"`, `id="channel"`, `id="subscribe"`, `"/ws"`, "trades:BTC-USD"} {
		if !strings.Contains(string(page), id) {
			t.Errorf("demo page lacks %s", id)
		}
	}
}

// TestEndpoints: what the plain endpoints answer, byte for byte where clients
// and probes read it; the demo page is served at / only.
func TestEndpoints(t *testing.T) {
	f := start(t)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	fetch := func(path string) (int, string) {
		t.Helper()
		resp, err := hc.Get(f.url(path))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		path, body string
		status     int
	}{
		{path: "/healthz", status: http.StatusOK, body: "ok\n"},
		{path: "/readyz", status: http.StatusOK, body: "ready\n"},
		{path: "/index.html", status: http.StatusNotFound, body: "404 page not found\n"},
		{path: "/web/index.html", status: http.StatusNotFound, body: "404 page not found\n"},
	} {
		if status, body := fetch(tt.path); status != tt.status || body != tt.body {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, status, body, tt.status, tt.body)
		}
	}
	if status, body := fetch("/"); status != http.StatusOK || !strings.Contains(body, `id="subscribe"`) {
		t.Errorf("GET / = %d, no demo page", status)
	}
	status, body := fetch("/metrics")
	for _, series := range []string{"ws_build_info{", "ws_connections ", `ws_disconnects_total{reason="slow"}`} {
		if status != http.StatusOK || !strings.Contains(body, series) {
			t.Errorf("GET /metrics = %d, lacks %s", status, series)
		}
	}
}

// TestCheckHealth: the healthcheck subcommand's probe succeeds against a live
// server, and fails on an address without a port and on a stopped server.
func TestCheckHealth(t *testing.T) {
	f := start(t)
	_, port, _ := net.SplitHostPort(f.addr)
	if err := CheckHealth(t.Context(), ":"+port, false); err != nil {
		t.Errorf("CheckHealth of a live server: %v", err)
	}
	if err := CheckHealth(t.Context(), "no-port", false); err == nil {
		t.Error("CheckHealth accepted an address without a port")
	}
	f.stop()
	if err := CheckHealth(t.Context(), ":"+port, false); err == nil {
		t.Error("CheckHealth of a stopped server succeeded")
	}
}
