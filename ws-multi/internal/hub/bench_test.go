package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// countConn counts delivered lines and writes and discards the bytes: the benchmark measures
// the hub, not a socket. Each Write is one frame per message, as unbatched, and its socket
// always takes everything.
type countConn struct {
	lines, writes *atomic.Int64
}

func (c countConn) Write(msgs []*protocol.Message) (Written, bool, error) {
	c.lines.Add(int64(len(msgs)))
	c.writes.Add(1)
	w := Written{Lines: len(msgs), Frames: len(msgs)}
	for _, m := range msgs {
		w.Bytes += len(m.Wire)
	}
	return w, true, nil
}
func (countConn) Flush() error { panic("countConn: the socket always takes everything") }
func (countConn) Overflow()    {}

// BenchmarkFanout publishes records on one channel to 1000 subscribers spread over the shards
// and reports the cost per delivery (one record to one client), end to end through the
// shards and the send queues to the writes.
func BenchmarkFanout(b *testing.B) {
	const clients = 1000
	for _, shards := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			cfg := Config{
				Shards: shards, MaxSubscriptions: 10, SendQueueMessages: 1 << 30, SendQueueBytes: 1 << 40,
				WriteTimeout: 5 * time.Second,
			}
			h, _ := startHub(b, cfg)
			var lines, writes atomic.Int64
			var cs []*Client
			for range clients {
				c := register(b, h, countConn{lines: &lines, writes: &writes})
				handle(b, h, c, protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"trades:BTC-USD"}})
				cs = append(cs, c)
			}
			await.True(b, 2*time.Minute, func() bool { return lines.Load() >= clients }, "subscribe replies")
			msg := protocol.EncodeRecord(protocol.Record{Channel: "trades:BTC-USD", Topic: "trades", Value: []byte(`{"price":"64123.5","size":"0.25"}`), Timestamp: time.Now()})
			ctx := context.Background()
			writes0 := writes.Load()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := h.Publish(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			await.True(b, 2*time.Minute, func() bool { return lines.Load() >= int64(clients)*int64(b.N+1) }, "deliveries")
			elapsed := time.Since(start)
			b.StopTimer()
			deliveries := float64(clients) * float64(b.N)
			b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
			// Writes per delivery: what the hub would cost in syscalls on real sockets.
			b.ReportMetric(float64(writes.Load()-writes0)/deliveries, "writes/delivery")
			for _, c := range cs {
				_ = h.Unregister(ctx, c)
				c.Wait()
			}
		})
	}
}
