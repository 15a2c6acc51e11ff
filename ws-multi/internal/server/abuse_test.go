// This file is duplicated in ws-single (internal/server/abuse_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// waitDisconnect waits until ws_disconnects_total{reason} reaches 1.
func (f *fixture) waitDisconnect(t *testing.T, reason string) {
	t.Helper()
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(f.m.Disconnects.WithLabelValues(reason)) == 1
	}, "disconnect "+reason)
}

// TestRateLimitCountsPingsAndOwesReplies: WebSocket pings count against the
// token bucket like requests; the frame that finds it empty is not answered,
// and neither is anything after it, but every reply owed before it is
// delivered before 1008 rate_limit.
func TestRateLimitCountsPingsAndOwesReplies(t *testing.T) {
	pings := func(n int) []byte {
		var b []byte
		for i := range n {
			b = append(b, frame(opPing, []byte(fmt.Sprint(i)), true)...)
		}
		return b
	}
	requests := func(n int) []byte {
		var b []byte
		for i := range n {
			b = append(b, frame(opText, []byte(fmt.Sprintf(`{"op":"ping","id":"%d"}`, i)), true)...)
		}
		return b
	}
	tests := []struct {
		name      string
		send      []byte
		wantPongs int // WebSocket pongs
		wantLines int // {"op":"pong"} replies
		atMost    bool
	}{
		{name: "41 pings with burst 40", send: pings(41), wantPongs: 40},
		{name: "41 requests with burst 40", send: requests(41), wantLines: 40},
		{name: "a ping flood", send: pings(20000), wantPongs: 40, atMost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, func(c *config.Config, _ *setup) {
				c.RateLimit = 0.01 // no refill during the test
				c.RateBurst = 40
			})
			c := f.rawDial(0)
			go func() { _, _ = c.nc.Write(tt.send) }() // all at once; the flood may outlast the close
			cf, seen, texts := c.untilClose(15 * time.Second)
			lines := 0
			for _, text := range texts {
				lines += strings.Count(text, `"op":"pong"`)
			}
			pongs := seen[opPong]
			if tt.atMost {
				if pongs > tt.wantPongs {
					t.Fatalf("%d pongs, want at most %d", pongs, tt.wantPongs)
				}
			} else if pongs != tt.wantPongs || lines != tt.wantLines {
				t.Fatalf("%d pongs and %d pong replies before the close, want %d and %d", pongs, lines, tt.wantPongs, tt.wantLines)
			}
			if cf.code != websocket.StatusPolicyViolation || cf.text != "rate_limit" {
				t.Fatalf("close = %v, want 1008 rate_limit", cf)
			}
			f.waitDisconnect(t, "rate_limit")
		})
	}
}

// TestFrameAbuseClosesWithItsCode: what the reader refuses, each with its close
// frame (received, not reset: the server lingers) and its disconnect reason.
func TestFrameAbuseClosesWithItsCode(t *testing.T) {
	tests := []struct {
		name   string
		send   []byte
		code   websocket.StatusCode
		text   string // "" = any (the library's text)
		reason string
	}{
		{"invalid utf8", frame(opText, []byte("{\"op\":\"ping\",\"id\":\"\xff\"}"), true),
			websocket.StatusInvalidFramePayloadData, "invalid_utf8", "invalid_utf8"},
		{"unmasked frame", frame(opText, []byte(`{"op":"ping"}`), false),
			websocket.StatusProtocolError, "protocol", "protocol"},
		{"unknown opcode", frame(0x3, []byte("x"), true), websocket.StatusProtocolError, "", "protocol"},
		{"continuation first", frame(opCont, []byte("x"), true), websocket.StatusProtocolError, "", "protocol"},
		{"fragmented ping", frameHeader(opPing, false, 1, true, []byte("x")), websocket.StatusProtocolError, "", "protocol"},
		{"oversized ping", frame(opPing, bytes.Repeat([]byte("x"), 126), true), websocket.StatusProtocolError, "", "protocol"},
		{"rsv bits", append([]byte{0x80 | 0x40 | opText}, frame(opText, []byte("x"), true)[1:]...),
			websocket.StatusProtocolError, "", "protocol"},
		{"binary", frame(opBin, []byte("x"), true), websocket.StatusUnsupportedData, "binary", "binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t)
			c := f.rawDial(0)
			c.write(tt.send)
			cf, _, _ := c.untilClose(10 * time.Second)
			if cf.code != tt.code || (tt.text != "" && cf.text != tt.text) {
				t.Fatalf("close = %v, want %d %q", cf, tt.code, tt.text)
			}
			f.waitDisconnect(t, tt.reason)
		})
	}
}

// TestOversizedFrameGets1009WhileSending: a client still sending a frame past
// the read limit receives the 1009 close frame, because the server reads and
// discards its data until its close instead of resetting the connection.
func TestOversizedFrameGets1009WhileSending(t *testing.T) {
	f := start(t) // WS_READ_LIMIT 4096
	c := f.rawDial(0)
	big := frame(opText, bytes.Repeat([]byte("x"), 4<<20), true)
	sent := make(chan error, 1)
	go func() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
		_, err := c.nc.Write(big)
		sent <- err
	}()
	cf, _, _ := c.untilClose(15 * time.Second)
	if cf.code != websocket.StatusMessageTooBig {
		t.Fatalf("close = %v, want 1009", cf)
	}
	if err := <-sent; err != nil {
		t.Fatalf("the client's 4 MiB write failed (the server reset it): %v", err)
	}
	f.waitDisconnect(t, "read_limit")
}

func TestAbuseClosesWithItsCode(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.ReadLimit = 256
		c.RateLimit = 1
		c.RateBurst = 3
	})
	tests := []struct {
		name   string
		abuse  func(c *client)
		code   websocket.StatusCode
		reason string
		metric string
	}{
		{"binary", func(c *client) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.ws.Write(ctx, websocket.MessageBinary, []byte(`{"op":"ping"}`))
		}, websocket.StatusUnsupportedData, "binary", "binary"},
		{"read limit", func(c *client) {
			c.send(`{"op":"ping","pad":"` + strings.Repeat("x", 300) + `"}`)
		}, websocket.StatusMessageTooBig, "", "read_limit"},
		{"rate limit", func(c *client) {
			for range 6 {
				c.send(`{"op":"ping"}`)
			}
		}, websocket.StatusPolicyViolation, "rate_limit", "rate_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.connect()
			c.t = t
			tt.abuse(c)
			c.expectClose(tt.code, tt.reason)
			await.True(t, 20*time.Second, func() bool {
				return testutil.ToFloat64(f.m.Disconnects.WithLabelValues(tt.metric)) == 1
			}, "disconnect counted")
		})
	}
}

// TestRateLimitWinsOverLaterWriteTimeout: a client that ran its rate limit dry
// while a flush to its full socket was under way ends as rate_limit, the reason
// set first, though the flush then times out (write_timeout drops the socket).
func TestRateLimitWinsOverLaterWriteTimeout(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.WriteTimeout = 2 * time.Second
		c.SendQueueBytes = 64 << 20 // the burst is queued, never cut as slow
		c.RateLimit, c.RateBurst = 0.01, 3
	})
	c := f.rawDial(4 << 10) // it never reads again: the socket fills
	c.write(frame(opText, []byte(`{"op":"subscribe","channels":["trades:*"]}`), true))
	if _, payload, err := c.readFrame(5 * time.Second); err != nil || !bytes.Contains(payload, []byte("subscribed")) {
		t.Fatalf("subscribe reply %q, %v", payload, err)
	}
	// 12 MB: more than the sockets hold, so a flush waits for the socket from
	// the first records on, and times out WS_WRITE_TIMEOUT later.
	wire := []byte(`{"op":"message","channel":"trades:X","topic":"trades","partition":0,"offset":0,"ts":0,"data":"` + strings.Repeat("x", 1_000_000) + `"}`)
	for range 12 {
		m := &protocol.Message{Channel: "trades:X", Topic: "trades", Time: time.Now(), Wire: wire}
		if err := f.srv.hub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	// Two pings are owed replies queued behind the burst; the third runs the
	// bucket dry.
	var pings []byte
	for range 3 {
		pings = append(pings, frame(opText, []byte(`{"op":"ping"}`), true)...)
	}
	c.write(pings)
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Connections) == 0 }, "disconnect")
	for r, want := range map[string]float64{"rate_limit": 1, "write_timeout": 0, "client": 0, "slow": 0} {
		if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues(r)); got != want {
			t.Errorf("disconnects{%s} = %v, want %v", r, got, want)
		}
	}
}
