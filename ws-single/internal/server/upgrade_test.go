// This file is duplicated in ws-multi (internal/server/upgrade_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
)

// TestFrameInTheHandshakePacket sends the upgrade request and a first frame
// in one write, so net/http reads the frame ahead with the request: the
// hijack with our own buffers must keep those bytes.
func TestFrameInTheHandshakePacket(t *testing.T) {
	f := start(t)
	conn, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))

	payload := []byte(`{"op":"ping","id":"early"}`)
	mask := []byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload))}
	frame = append(frame, mask...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	req := "GET /ws HTTP/1.1\r\nHost: " + f.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}

	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake = %v, %v", resp, err)
	}
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatalf("no frame after the handshake: %v", err)
	}
	body := make([]byte, head[1]&0x7f)
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if head[0] != 0x81 || !strings.Contains(string(body), `"pong","id":"early"`) {
		t.Fatalf("frame %x %q, want a text frame with the pong", head, body)
	}
}

func TestUpgradeRejections(t *testing.T) {
	t.Run("origin", func(t *testing.T) {
		f := start(t, func(c *config.Config, _ *setup) { c.AllowedOrigins = []string{"*.example.com"} })
		_, resp, err := f.dial(&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.test"}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin dial = %v, %v; want 403", resp, err)
		}
		ws, _, err := f.dial(&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://app.example.com"}}})
		if err != nil {
			t.Fatalf("allowed origin: %v", err)
		}
		ws.CloseNow()
		if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("origin")); got != 1 {
			t.Fatalf("rejected{origin} = %v, want 1", got)
		}
	})
	t.Run("over capacity", func(t *testing.T) {
		f := start(t, func(_ *config.Config, o *setup) { o.maxConns = 1 })
		first := f.connect()
		second := f.connect()
		second.expectClose(websocket.StatusTryAgainLater, "over_capacity")
		first.send(`{"op":"ping","id":"1"}`)
		first.expect(map[string]any{"op": "pong"})
		if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("max_connections")); got != 1 {
			t.Fatalf("rejected{max_connections} = %v, want 1", got)
		}
		// Once ws_connections has dropped, the slot is free.
		_ = first.ws.CloseNow()
		await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Connections) == 0 }, "first gone")
		again := f.connect()
		again.send(`{"op":"ping","id":"2"}`)
		again.expect(map[string]any{"op": "pong"})
	})
	t.Run("cpu", func(t *testing.T) {
		f := start(t, func(_ *config.Config, o *setup) { o.admission = allow{ok: false, retry: 2500 * time.Millisecond} })
		_, resp, err := f.dial(nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" {
			t.Fatalf("dial under CPU pressure = %v, %v; want 503 with Retry-After 3", resp, err)
		}
		if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("cpu")); got != 1 {
			t.Fatalf("rejected{cpu} = %v, want 1", got)
		}
	})
	t.Run("plain http", func(t *testing.T) {
		f := start(t)
		resp, err := f.get("/ws")
		if err != nil || resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("GET /ws = %v, %v; want 426", resp, err)
		}
	})
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
	// Once its handler has left (the one left is the slot holder's), nothing
	// more happens for that connection.
	await.True(t, 5*time.Second, func() bool {
		f.srv.hmu.Lock()
		defer f.srv.hmu.Unlock()
		return f.srv.handlers == 1
	}, "the over-capacity handler gone")
	if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues("rate_limit")); got != 0 {
		t.Fatalf("disconnects{rate_limit} = %v for a connection never served", got)
	}
}
