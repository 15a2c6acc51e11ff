package hub

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// countConn counts delivered lines, frames and socket writes and discards the bytes: the
// benchmark measures the hub, not a socket. It corks like the server's connections, so a
// corked hand-off counts as one socket write, and its socket always takes everything.
type countConn struct {
	lines, frames, writes *atomic.Int64
	corked                *bool // touched by the client's shard only
}

func (c countConn) Write(_ context.Context, _ websocket.MessageType, p []byte) error {
	c.lines.Add(int64(bytes.Count(p, []byte{'\n'}) + 1))
	c.frames.Add(1)
	if !*c.corked {
		c.writes.Add(1)
	}
	return nil
}
func (countConn) Ping(context.Context) error               { return nil }
func (countConn) Close(websocket.StatusCode, string) error { return nil }
func (countConn) CloseNow() error                          { return nil }
func (c countConn) Cork()                                  { *c.corked = true }
func (countConn) Buffered() int                            { return 0 }
func (c countConn) TryUncork() (bool, error) {
	*c.corked = false
	c.writes.Add(1)
	return true, nil
}
func (c countConn) Uncork(time.Duration) error {
	panic("countConn: the socket always takes everything")
}

// BenchmarkFanout publishes records on one channel to 1000 subscribers spread over the shards
// and reports the cost per delivery (one record to one client), end to end through the
// shards and the send queues to the corked writes.
func BenchmarkFanout(b *testing.B) {
	const clients = 1000
	for _, shards := range []int{1, 2, 4} {
		for _, batch := range []bool{true, false} {
			b.Run(fmt.Sprintf("shards=%d/batch=%v", shards, batch), func(b *testing.B) {
				cfg := Config{
					Shards: shards, MaxSubscriptions: 10, SendQueueMessages: 1 << 30, SendQueueBytes: 1 << 40,
					WriteTimeout: 5 * time.Second, Batch: batch, BatchMaxBytes: 32768,
				}
				h, m := startHub(b, cfg)
				var lines, frames, writes atomic.Int64
				var cs []*Client
				for range clients {
					c := h.Register(countConn{lines: &lines, frames: &frames, writes: &writes, corked: new(bool)})
					c.Request(protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"trades:BTC-USD"}})
					cs = append(cs, c)
				}
				waitCount(b, &lines, clients) // subscribe replies
				_ = m
				msg := protocol.EncodeRecord(protocol.Record{Channel: "trades:BTC-USD", Topic: "trades", Value: []byte(`{"price":"64123.5","size":"0.25"}`), Timestamp: time.Now()})
				ctx := context.Background()
				frames0, writes0 := frames.Load(), writes.Load()
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					if err := h.Publish(ctx, msg); err != nil {
						b.Fatal(err)
					}
				}
				waitCount(b, &lines, int64(clients)*int64(b.N+1))
				elapsed := time.Since(start)
				b.StopTimer()
				deliveries := float64(clients) * float64(b.N)
				b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
				b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
				// Frames and socket writes (one per corked hand-off) per delivery: what the
				// hub would cost in syscalls on real sockets.
				b.ReportMetric(float64(frames.Load()-frames0)/deliveries, "frames/delivery")
				b.ReportMetric(float64(writes.Load()-writes0)/deliveries, "writes/delivery")
				for _, c := range cs {
					c.Finish(ReasonClient)
				}
			})
		}
	}
}

func waitCount(b *testing.B, n *atomic.Int64, want int64) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", n.Load(), want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
