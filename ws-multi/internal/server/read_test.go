package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestStalledControlFrameIsReadTimeout: a control frame whose header arrives but whose
// payload never does fails coder/websocket's own 5 s read context inside Reader (the library
// closes the socket then, so no close frame can go out): reason read_timeout, not client.
func TestStalledControlFrameIsReadTimeout(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b)
	c := e.dialRaw()
	ping := wsFrame(true, opPing, []byte("0123456789"), true)
	start := time.Now()
	if err := c.send(ping[:len(ping)-10]); err != nil { // header and mask key, no payload
		t.Fatal(err)
	}
	_, code, _ := c.untilClose(15 * time.Second)
	if el := time.Since(start); el > 12*time.Second {
		t.Errorf("connection ended after %v, want about 5 s", el)
	}
	if code != -1 && code != int(websocket.StatusPolicyViolation) {
		t.Errorf("closed with %d, want 1008 read_timeout or a dropped socket", code)
	}
	e.waitDisconnect("read_timeout", 1)
	if got := testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("client")); got != 0 {
		t.Errorf("disconnects{client} = %v, want 0", got)
	}
}

// TestReadErrReason: how a failed read is labelled; both kinds of read deadline are
// read_timeout, whether ours (the raw socket's, around a data frame's payload) or
// coder/websocket's (its 5 s context around a control frame's payload).
func TestReadErrReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want Reason
	}{
		{fmt.Errorf("failed to get reader: %w", context.DeadlineExceeded), ReasonReadTimeout},
		{fmt.Errorf("failed to read frame payload: %w", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}), ReasonReadTimeout},
		{fmt.Errorf("failed to get reader: %w", io.EOF), ReasonClient},
		{fmt.Errorf("failed to get reader: %w", net.ErrClosed), ReasonClient},
		{fmt.Errorf("failed to get reader: %w", context.Canceled), ReasonClient},
		{websocket.CloseError{Code: websocket.StatusNormalClosure}, ReasonClient},
		{fmt.Errorf("read: %w", websocket.ErrMessageTooBig), ReasonReadLimit},
		{errors.New("received header with unexpected rsv bits set"), ReasonProtocol},
	}
	for _, tt := range tests {
		if got := readErrReason(tt.err); got != tt.want {
			t.Errorf("readErrReason(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
