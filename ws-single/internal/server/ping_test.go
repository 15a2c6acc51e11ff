// This file is duplicated in ws-multi (internal/server/ping_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
)

func TestStalledClientTimesOut(t *testing.T) {
	tests := []struct {
		name   string
		opt    option
		stall  func(t *testing.T, f *fixture, c *client)
		reason string
	}{
		{
			name: "write", reason: "write_timeout",
			opt: func(c *config.Config, _ *setup) {
				c.WriteTimeout = 300 * time.Millisecond
				c.PingInterval = time.Hour
			},
			stall: func(t *testing.T, f *fixture, c *client) {
				c.send(`{"op":"subscribe","channels":["trades:*"]}`)
				await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Subscriptions) == 1 }, "subscribed")
				value := `"` + strings.Repeat("v", 64<<10) + `"`
				for i := 0; testutil.ToFloat64(f.m.Disconnects.WithLabelValues("write_timeout")) == 0; i++ {
					if i == 100 {
						t.Fatal("no write timeout after 100 records of 64 KiB")
					}
					kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "K", value))
					time.Sleep(20 * time.Millisecond)
				}
			},
		},
		{
			name: "ping", reason: "ping_timeout",
			opt: func(c *config.Config, _ *setup) {
				c.WriteTimeout = 200 * time.Millisecond
				c.PingInterval = time.Second // the shortest allowed
			},
			stall: func(t *testing.T, f *fixture, c *client) {
				// A client that does not read never answers pings.
				await.True(t, 20*time.Second, func() bool {
					return testutil.ToFloat64(f.m.Disconnects.WithLabelValues("ping_timeout")) == 1
				}, "ping timeout")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, tt.opt)
			ws, _, err := f.dial(&websocket.DialOptions{HTTPClient: smallReadBuffer()})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			tt.stall(t, f, &client{t: t, ws: ws})
			if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues(tt.reason)); got != 1 {
				t.Fatalf("disconnects{%s} = %v, want 1", tt.reason, got)
			}
			await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Connections) == 0 }, "connection gone")
		})
	}
}

// TestPingsEveryIntervalFromConnect: a connection's first ping comes one
// interval after it connected, not before, and the next one an interval after
// the pong came back (a timer per connection, re-armed once the pong is in).
func TestPingsEveryIntervalFromConnect(t *testing.T) {
	const interval = 300 * time.Millisecond
	// Under config's 1 s minimum: set past New's validation.
	f := startWith(t, nil, func(s *Server) { s.cfg.PingInterval = interval })
	last := time.Now()
	c := f.rawDial(0)
	for i := range 2 {
		op, payload, err := c.readFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if op != opPing {
			t.Fatalf("frame %d: opcode %#x, want a ping", i, op)
		}
		if d := time.Since(last); d < interval-50*time.Millisecond || d > 3*interval {
			t.Errorf("ping %d came %v after the connect or the last pong, want about %v", i, d, interval)
		}
		c.write(frame(opPong, payload, true))
		last = time.Now()
	}
}

// TestSlowReaderIsNotAPingTimeout: a client on a slow link, behind a backlog its socket is
// still taking, answers a ping only once it has read what came before it, later than the
// write timeout. It is reading, so it is not cut as ping_timeout (a client that stops
// reading is: TestStalledClientTimesOut). It conflates, so its queue stays small.
func TestSlowReaderIsNotAPingTimeout(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.WriteTimeout = time.Second
		c.PingInterval = time.Second // the shortest allowed
	})
	c := f.rawDialMSS(4096, 1400)
	c.write(frame(opText, []byte(`{"op":"subscribe","id":"s","channels":["trades:slow"],"conflate":"behind"}`), true))
	value := `"` + strings.Repeat("v", 2000) + `"`
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() { // about 200 KB/s for the key: several times what the client reads
		defer close(produced)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "slow", value))
		}
	}()
	pongs, read := 0, 0
	start := time.Now()
	for time.Since(start) < 6*time.Second { // read about 40 KB/s, answering pings
		op, payload, err := c.readFrame(5 * time.Second)
		if err != nil {
			close(stop)
			<-produced
			t.Fatalf("after %d bytes and %d pongs: %v (disconnects ping_timeout %v, write_timeout %v)", read, pongs, err,
				testutil.ToFloat64(f.m.Disconnects.WithLabelValues("ping_timeout")), testutil.ToFloat64(f.m.Disconnects.WithLabelValues("write_timeout")))
		}
		if op == opPing {
			c.write(frame(opPong, payload, true))
			pongs++
		}
		read += len(payload)
		time.Sleep(time.Duration(len(payload)) * time.Second / (40 << 10))
	}
	close(stop)
	<-produced
	if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues("ping_timeout")); got != 0 {
		t.Fatalf("disconnects{ping_timeout} = %v, want 0", got)
	}
	if pongs < 1 {
		t.Errorf("%d pings answered in 6 s at a 1 s interval", pongs)
	}
	if got := testutil.ToFloat64(f.m.ConflatedRecords.WithLabelValues("behind")); got == 0 {
		t.Error("nothing conflated: the client was never behind, so the test proves nothing")
	}
}
