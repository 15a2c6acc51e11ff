package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// countConn counts deliveries and writes nothing: the benchmark measures the
// hub (fan-out, queues, rounds of writes), not the sockets, which always take
// everything here.
type countConn struct{ delivered *atomic.Int64 }

func (c countConn) Write(msgs []*protocol.Message) (Written, bool, error) {
	c.delivered.Add(int64(len(msgs)))
	return Written{Lines: len(msgs), Frames: 1}, true, nil
}

func (countConn) Flush() error { panic("countConn: the socket always takes everything") }

func (countConn) Overflow() {}

// BenchmarkFanout publishes records to one channel with n subscribers. One op
// is one record; ns/delivery is the hub's cost per message per client.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
			h, err := New(Config{MaxSubscriptions: 1, SendQueueMessages: 1 << 30, SendQueueBytes: 1 << 40}, newHistory(b), nil, m, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = h.Run(ctx); close(done) }()

			var delivered atomic.Int64
			clients := make([]*Client, n)
			for i := range clients {
				clients[i] = NewClient(countConn{&delivered})
				if err := h.Register(ctx, clients[i]); err != nil {
					b.Fatal(err)
				}
				if err := h.Handle(ctx, clients[i], protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"trades:BTC"}}); err != nil {
					b.Fatal(err)
				}
			}
			await.True(b, time.Minute, func() bool { return delivered.Load() >= int64(n) }, "the subscribed replies")
			msg := &protocol.Message{Channel: "trades:BTC", Topic: "trades", Wire: []byte(`{"op":"message"}`)}

			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := h.Publish(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			await.True(b, time.Minute, func() bool { return delivered.Load() >= int64(n)+int64(b.N)*int64(n) }, "every delivery")
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*n), "ns/delivery")
			b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "deliveries/s")

			for _, c := range clients {
				_ = h.Unregister(ctx, c)
				c.Wait()
			}
			cancel()
			<-done
		})
	}
}
