package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
)

// TestUnreadPongsAreBounded: a client that floods pings and never reads gets pongs only until
// its socket and the cork hold WS_SEND_QUEUE_BYTES (then it is cut as slow), or until the
// socket has taken nothing for WS_WRITE_TIMEOUT (write_timeout, not client).
func TestUnreadPongsAreBounded(t *testing.T) {
	tests := []struct {
		name       string
		queueBytes int
		timeout    time.Duration
		reason     string
	}{
		{name: "past WS_SEND_QUEUE_BYTES", queueBytes: 256 << 10, timeout: 10 * time.Second, reason: "slow"},
		{name: "past WS_WRITE_TIMEOUT", queueBytes: 1 << 30, timeout: 500 * time.Millisecond, reason: "write_timeout"},
	}
	b := startBroker(t, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, b, func(cfg *config.Config, _ *int) {
				cfg.SendQueueBytes = tt.queueBytes
				cfg.WriteTimeout = tt.timeout
				cfg.RateLimit, cfg.RateBurst = 1e9, 1e9 // pings count: let the flood through
			})
			c := e.dialRaw()
			ping := bytes.Repeat(wsFrame(true, opPing, bytes.Repeat([]byte("p"), 125), true), 256)
			start := time.Now()
			for c.send(ping) == nil { // until the server drops the socket
				if time.Since(start) > 30*time.Second {
					t.Fatal("still connected after 30 s of pings")
				}
			}
			e.waitDisconnect(tt.reason, 1)
			if got := testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("client")); got != 0 {
				t.Errorf("disconnects{client} = %v, want 0", got)
			}
		})
	}
}

// TestRateLimitCountsPingsAndPaysWhatIsOwed: WebSocket pings take tokens like requests; the
// message that finds the bucket empty is not answered, every reply owed before it is
// delivered, then 1008 rate_limit.
func TestRateLimitCountsPingsAndPaysWhatIsOwed(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.RateLimit, cfg.RateBurst = 0.5, 40 // no token comes back during the test
	})
	tests := []struct {
		name  string
		frame func(i int) []byte
		reply func(f frame) []string // the replies a frame carries
		want  []string
	}{
		{
			name:  "41 WebSocket pings",
			frame: func(i int) []byte { return wsFrame(true, opPing, fmt.Appendf(nil, "p%d", i), true) },
			reply: func(f frame) []string {
				if f.op == opPong {
					return []string{string(f.payload)}
				}
				return nil
			},
			want: seq("p%d", 40),
		},
		{
			name:  "41 JSON pings",
			frame: func(i int) []byte { return wsFrame(true, opText, fmt.Appendf(nil, `{"op":"ping","id":"%d"}`, i), true) },
			reply: func(f frame) []string {
				if f.op == opText {
					return strings.Split(string(f.payload), "\n")
				}
				return nil
			},
			want: seq(`{"op":"pong","id":"%d"}`, 40),
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dialRaw()
			var burst []byte
			for i := range 41 {
				burst = append(burst, tt.frame(i)...)
			}
			if err := c.send(burst); err != nil {
				t.Fatal(err)
			}
			frames, code, reason := c.untilClose(10 * time.Second)
			var got []string
			for _, f := range frames {
				got = append(got, tt.reply(f)...)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("replies before the close = %q, want %q", got, tt.want)
			}
			if code != int(websocket.StatusPolicyViolation) || reason != "rate_limit" {
				t.Errorf("closed with %d %q, want 1008 rate_limit", code, reason)
			}
			c.conn.Close() // ends the server's linger
			e.waitDisconnect("rate_limit", float64(i+1))
		})
	}

	t.Run("ping flood", func(t *testing.T) {
		c := e.dialRaw()
		if err := c.send(bytes.Repeat(wsFrame(true, opPing, []byte("x"), true), 10000)); err != nil {
			t.Fatal(err)
		}
		frames, code, reason := c.untilClose(10 * time.Second)
		if code != int(websocket.StatusPolicyViolation) || reason != "rate_limit" || len(frames) != 40 {
			t.Errorf("%d frames, then closed with %d %q, want 40 pongs and 1008 rate_limit", len(frames), code, reason)
		}
		c.conn.Close()
		e.waitDisconnect("rate_limit", 3)
	})
}

func seq(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// TestServerClosesWithCodes: what the server reads decides how it closes, and the close
// frame reaches a client that is still sending (the server lingers).
func TestServerClosesWithCodes(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) { cfg.WriteTimeout = 500 * time.Millisecond })
	huge := func(n uint64) []byte { // a text frame header declaring n bytes, no payload
		h := binary.BigEndian.AppendUint64([]byte{0x80 | opText, 0x80 | 127}, n)
		return append(h, 1, 2, 3, 4)
	}
	tests := []struct {
		name    string
		send    []byte
		stream  bool // keep sending payload bytes after send, until the socket fails
		code    int
		text    string
		label   string
		maxTime time.Duration
	}{
		{name: "invalid UTF-8", send: wsFrame(true, opText, []byte("{\"op\":\"ping\",\"id\":\"\xff\"}"), true),
			code: 1007, text: "invalid_utf8", label: "invalid_utf8"},
		{name: "4 MB frame from a client that keeps sending", send: huge(4 << 20), stream: true,
			code: 1009, label: "read_limit"},
		{name: "huge declared length, nothing sent", send: huge(1 << 40),
			code: 1008, text: "read_timeout", label: "read_timeout", maxTime: 3 * time.Second},
		{name: "unmasked frame", send: wsFrame(true, opText, []byte(`{"op":"ping"}`), false), code: 1002, label: "protocol"},
		{name: "unknown opcode", send: wsFrame(true, 0x3, nil, true), code: 1002, label: "protocol"},
		{name: "reserved bits", send: append([]byte{0x80 | 0x40 | opText}, wsFrame(true, opText, []byte("{}"), true)[1:]...), code: 1002, label: "protocol"},
		{name: "fragmented ping", send: wsFrame(false, opPing, []byte("x"), true), code: 1002, label: "protocol"},
		{name: "oversized ping", send: wsFrame(true, opPing, bytes.Repeat([]byte("x"), 126), true), code: 1002, label: "protocol"},
		{name: "continuation first", send: wsFrame(true, opContinuation, []byte("x"), true), code: 1002, label: "protocol"},
		{name: "binary", send: wsFrame(true, opBinary, []byte("{}"), true), code: 1003, text: "binary", label: "binary"},
	}
	counts := map[string]float64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dialRaw()
			start := time.Now()
			if err := c.send(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.stream {
				go func() {
					chunk := make([]byte, 16<<10)
					for c.send(chunk) == nil {
					}
				}()
			}
			_, code, text := c.untilClose(10 * time.Second)
			if code != tt.code || (tt.text != "" && text != tt.text) {
				t.Errorf("closed with %d %q, want %d %q", code, text, tt.code, tt.text)
			}
			if el := time.Since(start); tt.maxTime > 0 && el > tt.maxTime {
				t.Errorf("closed after %v, want within %v", el, tt.maxTime)
			}
			c.conn.Close()
			counts[tt.label]++
			e.waitDisconnect(tt.label, counts[tt.label])
		})
	}
	if got := testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("error")); got != 0 {
		t.Errorf("disconnects{error} = %v, want 0", got)
	}
}

// TestRateLimitWinsOverLaterWriteTimeout: a client that ran its rate limit dry while a flush
// to its full socket was under way ends as rate_limit, the reason decided first, though the
// flush then times out (the flusher's write_timeout drops the socket).
func TestRateLimitWinsOverLaterWriteTimeout(t *testing.T) {
	const partitions = 4
	b := startBroker(t, partitions)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.WriteTimeout = 5 * time.Second
		cfg.SendQueueBytes = 64 << 20 // the burst is queued, never cut as slow
		cfg.RateLimit, cfg.RateBurst = 0.1, 3
	})
	c := e.dialRaw()
	_ = c.conn.(*net.TCPConn).SetReadBuffer(4 << 10) // it never reads again: the socket fills
	if err := c.send(wsFrame(true, opText, []byte(`{"op":"subscribe","channels":["trades:*"]}`), true)); err != nil {
		t.Fatal(err)
	}
	if f, err := c.readFrame(5 * time.Second); err != nil || !strings.Contains(string(f.payload), "subscribed") {
		t.Fatalf("subscribe reply %q, %v", f.payload, err)
	}

	// 12 MB in one pipelined burst: more than the sockets hold, so a flush waits for the
	// socket from the first records on, and times out WS_WRITE_TIMEOUT later.
	const records = 12
	produceBurst(t, b, records, partitions, "k")
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.KafkaRecords.WithLabelValues("trades")) == records
	}, "burst consumed")
	// Two pings are owed replies queued behind the burst; the third runs the bucket dry.
	var pings []byte
	for range 3 {
		pings = append(pings, wsFrame(true, opText, []byte(`{"op":"ping"}`), true)...)
	}
	if err := c.send(pings); err != nil {
		t.Fatal(err)
	}
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 0 }, "disconnect")
	for r, want := range map[string]float64{"rate_limit": 1, "write_timeout": 0, "client": 0} {
		if got := testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues(r)); got != want {
			t.Errorf("disconnects{%s} = %v, want %v", r, got, want)
		}
	}
}

// waitDisconnect waits until ws_disconnects_total{reason} reaches n.
func (e *env) waitDisconnect(reason string, n float64) {
	e.t.Helper()
	await.True(e.t, 20*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues(reason)) == n
	}, "disconnect "+reason)
}
