// This file is duplicated in ws-multi (internal/server/slow_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// TestUnreadPongsAreBounded: a client that sends pings and never reads piles
// pongs up in front of its socket. They are bounded by WS_SEND_QUEUE_BYTES
// (past it: slow) and by WS_WRITE_TIMEOUT (the drain of what waits: past it,
// write_timeout); the socket is dropped either way.
func TestUnreadPongsAreBounded(t *testing.T) {
	tests := []struct {
		name       string
		queueBytes int
		timeout    time.Duration
		maxSend    int // bytes of pings sent at most; the timeout case stops there and waits
		reason     string
	}{
		{name: "bytes", queueBytes: 64 << 10, timeout: time.Minute, maxSend: 40 << 20, reason: "slow"},
		{name: "time", queueBytes: 64 << 20, timeout: 300 * time.Millisecond, maxSend: 10 << 20, reason: "write_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, func(c *config.Config, _ *setup) {
				c.SendQueueBytes = tt.queueBytes
				c.WriteTimeout = tt.timeout
				c.PingInterval = time.Hour
				c.RateLimit, c.RateBurst = 1e9, 1e9 // pings count: let them all through
			})
			c := f.rawDial(4096) // and never read
			ping := frame(opPing, bytes.Repeat([]byte("p"), 125), true)
			batch := bytes.Repeat(ping, 512)
			cut := func() bool { return testutil.ToFloat64(f.m.Disconnects.WithLabelValues(tt.reason)) == 1 }
			for sent := 0; sent < tt.maxSend && !cut(); sent += len(batch) {
				_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.nc.Write(batch); err != nil {
					break // the server dropped the socket
				}
			}
			await.True(t, 20*time.Second, cut, "disconnect "+tt.reason)
			await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Connections) == 0 }, "connection gone")
		})
	}
}

// TestBurstToFastReadersIsNotCut: 30 records of 1 MB at once, far past the
// 4 MiB queue limit, to five clients that read at full speed: none is cut and
// all get every record. Each write hands a socket a chunk and the clients
// drain them; the burst waits as shared messages. The records go straight to
// the hub: a producer under the race detector would trickle them. The write
// timeout (slow rule (ii)) is 30 s: 150 MB under -race on a loaded 2-core box
// can take longer than the default 5 s, which is not what this test is about.
func TestBurstToFastReadersIsNotCut(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.WriteTimeout = 30 * time.Second })
	const clients, records = 5, 30
	var readers []*client
	for range clients {
		c := f.connect()
		c.send(`{"op":"subscribe","channels":["trades:*"]}`)
		c.expect(map[string]any{"op": "subscribed"})
		readers = append(readers, c)
	}
	got := make([]int, clients)
	var wg sync.WaitGroup
	for i, c := range readers {
		wg.Go(func() {
			for got[i] < records {
				line, err := c.next(30 * time.Second)
				if err != nil {
					return
				}
				if strings.HasPrefix(line, `{"op":"message"`) {
					got[i]++
				}
			}
		})
	}
	value := []byte(strings.Repeat("v", 1_000_000))
	burst := make([]*protocol.Message, records)
	for i := range burst {
		// The line as the Kafka side encodes it (docs/PROTOCOL.md), built here
		// so that the test needs only protocol.Message.
		wire := fmt.Appendf(nil, `{"op":"message","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":%d,"ts":%d,"data":"`, i, time.Now().UnixMilli())
		wire = append(append(wire, value...), `"}`...)
		burst[i] = &protocol.Message{Channel: "trades:BTC-USD", Topic: "trades", Offset: int64(i), Time: time.Now(), Wire: wire}
	}
	began := time.Now()
	for _, m := range burst {
		if err := f.srv.hub.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	t.Logf("%d records of 1 MB to %d clients in %v", records, clients, time.Since(began))
	for i, n := range got {
		if n != records {
			t.Errorf("client %d got %d of %d records", i, n, records)
		}
	}
	if got := testutil.ToFloat64(f.m.SendQueueOverflow); got != 0 {
		t.Fatalf("ws_send_queue_overflow_total = %v: clients draining the burst were cut", got)
	}
}

func TestSlowClientIsCutOthersKeepReceiving(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.SendQueueBytes = 48 << 10
		c.WriteTimeout = time.Minute // the queue limit must trigger, not the write timeout
	})
	ws, _, err := f.dial(&websocket.DialOptions{HTTPClient: smallReadBuffer()})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	slow := &client{t: t, ws: ws}
	slow.send(`{"op":"subscribe","channels":["trades:*"]}`)
	healthy := f.connect()
	healthy.send(`{"op":"subscribe","channels":["trades:*"]}`)
	healthy.expect(map[string]any{"op": "subscribed"})
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Subscriptions) == 2 }, "both subscribed")

	// The slow client never reads. Records go out in pairs of 8 KiB until the
	// slow one is cut: its queue is past the 48 KiB and its write in flight has
	// waited for the socket more than 1 s, under this continued traffic. The
	// queue limit counts a batch until its writer reports it written, which a
	// busy core can delay past the healthy client's read: then one pair is in
	// flight and the next pending, 32 KiB of the 48 KiB.
	value := `"` + strings.Repeat("v", 8<<10) + `"`
	sent := 0
	// Bounded in time, not rounds: the cut needs the write in flight to wait more than 1 s,
	// and without the race detector 1000 rounds take less than that.
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(f.m.SendQueueOverflow) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow client not cut within 20 s")
		}
		kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "K", value), kafkatest.Record("trades", 0, "K", value))
		for range 2 {
			healthy.expect(map[string]any{"op": "message", "offset": sent})
			sent++
		}
	}
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "K", `"after"`))
	healthy.expect(map[string]any{"op": "message", "data": "after"})
	// Once the slow client reads again it finds the close frame behind what
	// was already in its socket.
	slow.ws.SetReadLimit(-1)
	slow.expectClose(websocket.StatusPolicyViolation, "slow")
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(f.m.Disconnects.WithLabelValues("slow")) == 1
	}, "disconnect counted")
}
