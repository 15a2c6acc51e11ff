// This file is duplicated in ws-single (internal/server/read_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
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

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
)

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
