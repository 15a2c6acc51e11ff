package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
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

// TestDeclaredLengthMustArrive: a frame header declaring a huge length with
// no payload behind it ends the connection within the write timeout (1008
// read_timeout), not at the ping timeout.
func TestDeclaredLengthMustArrive(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.WriteTimeout = 300 * time.Millisecond
		c.PingInterval = time.Hour
	})
	c := f.rawDial(0)
	began := time.Now()
	c.write(frameHeader(opText, true, 1<<40, true, []byte(`{"op":`)))
	cf, _, _ := c.untilClose(10 * time.Second)
	if cf.code != websocket.StatusPolicyViolation || cf.text != "read_timeout" {
		t.Fatalf("close = %v, want 1008 read_timeout", cf)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("read_timeout after %v with a 300ms write timeout", took)
	}
	// The server's linger now discards the declared payload, which holds our
	// close frame, until lingerTimeout; going away ends it sooner.
	_ = c.nc.Close()
	f.waitDisconnect(t, "read_timeout")
}

// TestStalledControlFrameIsReadTimeout: a ping whose payload stalls is cut by
// coder/websocket's own 5 s bound on a control frame; that is a read timeout
// (reason read_timeout), not a protocol error.
func TestStalledControlFrameIsReadTimeout(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.WriteTimeout = 30 * time.Second // not ours: the library's bound ends it
		c.PingInterval = time.Hour
	})
	c := f.rawDial(0)
	c.write(frameHeader(opPing, true, 10, true, []byte("ab"))) // 2 of 10 bytes
	f.waitDisconnect(t, "read_timeout")
	if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues("protocol")); got != 0 {
		t.Fatalf("disconnects{protocol} = %v, want 0", got)
	}
}

// TestReadErrReason: how a read error maps to a disconnect reason.
func TestReadErrReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Reason
	}{
		{"payload past its deadline", fmt.Errorf("%w: %w", errReadTimeout, os.ErrDeadlineExceeded), ReasonReadTimeout},
		{"control frame past the library's bound", fmt.Errorf("failed to get reader: %w", context.DeadlineExceeded), ReasonReadTimeout},
		{"socket deadline", fmt.Errorf("failed to read frame payload: %w",
			&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), ReasonReadTimeout},
		{"peer gone", fmt.Errorf("failed to get reader: %w", io.EOF), ReasonClient},
		{"socket closed", net.ErrClosed, ReasonClient},
		{"bad frame", errors.New("received fragmented control frame"), ReasonProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := readErrReason(tt.err); got != tt.want {
				t.Errorf("readErrReason(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestSlowFrameWithinTheTimeoutIsRead: the payload deadline does not cut a
// frame that arrives in pieces within it, nor an idle connection.
func TestSlowFrameWithinTheTimeoutIsRead(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.WriteTimeout = time.Second })
	c := f.rawDial(0)
	whole := frame(opText, []byte(`{"op":"ping","id":"slow"}`), true)
	c.write(whole[:8])
	time.Sleep(100 * time.Millisecond)
	c.write(whole[8:])
	time.Sleep(1500 * time.Millisecond) // idle, past the write timeout: no frame is pending
	c.write(frame(opText, []byte(`{"op":"ping","id":"again"}`), true))
	var got []string
	for len(got) < 2 {
		op, p, err := c.readFrame(5 * time.Second)
		if err != nil || op != opText {
			t.Fatalf("frame %x %q, %v", op, p, err)
		}
		got = append(got, strings.Split(string(p), "\n")...)
	}
	if got[0] != `{"op":"pong","id":"slow"}` || got[1] != `{"op":"pong","id":"again"}` {
		t.Fatalf("replies = %q", got)
	}
}
