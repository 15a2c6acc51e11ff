package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
)

func TestSlowClientIsCutHealthyKeepsReceiving(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.SendQueueMessages = 16
		cfg.SendQueueBytes = 256 << 10
		cfg.WriteTimeout = 15 * time.Second // the stalled write must outlive the overflow
	})
	slow, healthy := e.mustDial(), e.mustDial()
	slow.subscribe("trades:*")
	healthy.subscribe("trades:*")
	col := healthy.collect()

	// The slow client stops reading. Large records fill the socket buffers, then its queue.
	value := `"` + strings.Repeat("x", 16<<10) + `"`
	sent := 0
	for testutil.ToFloat64(e.metrics.SendQueueOverflow) == 0 {
		if sent == 2000 {
			t.Fatal("no overflow after 2000 records")
		}
		b.send(t, "trades", 0, "BTC-USD", value)
		sent++
		if sent%4 == 0 { // keep the healthy client's queue short
			await.True(t, 20*time.Second, func() bool { return len(col.messages()) >= sent-4 }, "healthy client keeps up")
		}
	}
	await.True(t, 20*time.Second, func() bool { return len(col.messages()) == sent }, "healthy client got every record")
	code, reason := slow.closeStatus(20 * time.Second)
	if code != websocket.StatusPolicyViolation || reason != "slow" {
		t.Errorf("slow client closed with %d %q, want 1008 slow", code, reason)
	}
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("slow")) == 1
	}, "slow disconnect counted")
	b.send(t, "trades", 0, "BTC-USD", "1")
	await.True(t, 20*time.Second, func() bool { return len(col.messages()) == sent+1 }, "healthy client still receiving")
}

// countMessages reads c at full speed on its own goroutine, counting record messages without
// decoding them, until the connection ends.
func countMessages(t *testing.T, c *client) *atomic.Int64 {
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, data, err := c.conn.Read(context.Background())
			if err != nil {
				return
			}
			for line := range bytes.SplitSeq(data, []byte{'\n'}) {
				if bytes.HasPrefix(line, []byte(`{"op":"message"`)) {
					n.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() {
		c.conn.CloseNow()
		<-done
	})
	return &n
}

// TestLargeRecordBurst: 30 records of 1 MB to 5 clients that read at full speed cut none of
// them, though their queues pass WS_SEND_QUEUE_BYTES (1 MiB here, so that two records queued
// at once do) again and again; a client that has stopped reading is cut as slow under the
// traffic that follows, and only it.
func TestLargeRecordBurst(t *testing.T) {
	const partitions = 6 // one fetch brings a record of each: the burst reaches the hub at once
	b := startBroker(t, partitions)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		// Long enough that no reader's queue stays past a limit that long on a loaded
		// machine (rule ii); the client that stops reading is cut by rule i (1 s).
		cfg.WriteTimeout = 30 * time.Second
		cfg.SendQueueBytes = 1 << 20
	})
	// The readers' sockets have a 64 KiB receive buffer, as a client across a real network
	// has a window: a 1 MB frame does not fit in the socket at once, as on loopback it would.
	smallWindow := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				err = c.(*net.TCPConn).SetReadBuffer(64 << 10)
			}
			return c, err
		}}}
	var readers []*atomic.Int64
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/ws", &websocket.DialOptions{HTTPClient: smallWindow})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		conn.SetReadLimit(16 << 20)
		c := &client{t: t, conn: conn}
		c.subscribe("trades:*")
		readers = append(readers, countMessages(t, c))
	}
	stuck := e.mustDial()
	stuck.subscribe("trades:*") // and never reads again

	// The burst is produced at once (pipelined produce requests), so it reaches the
	// server faster than the clients read it.
	const records = 30
	produceBurst(t, b, records, partitions, "BTC-USD")
	defer func() {
		if t.Failed() { // was a reader cut, or is it behind?
			for i, n := range readers {
				t.Logf("reader %d: %d messages", i, n.Load())
			}
			for _, r := range []string{"slow", "write_timeout", "client"} {
				t.Logf("disconnects{%s} = %v", r, testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues(r)))
			}
		}
	}()
	for i, n := range readers {
		await.True(t, time.Minute, func() bool { return n.Load() == records }, fmt.Sprintf("reader %d gets the burst", i))
	}
	sent := records
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("slow")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client that stopped reading was not cut")
		}
		b.send(t, "trades", 0, "BTC-USD", `{"small":1}`)
		sent++
		time.Sleep(50 * time.Millisecond)
	}
	for i, n := range readers {
		await.True(t, time.Minute, func() bool { return n.Load() == int64(sent) }, fmt.Sprintf("reader %d gets everything", i))
	}
	for _, r := range []string{"slow", "write_timeout", "client"} {
		want := 0.0
		if r == "slow" {
			want = 1
		}
		if got := testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues(r)); got != want {
			t.Errorf("disconnects{%s} = %v, want %v", r, got, want)
		}
	}
	if got := testutil.ToFloat64(e.metrics.Connections); got != 5 {
		t.Errorf("ws_connections = %v, want the 5 readers", got)
	}
}

// produceBurst produces n records of 1 MB on key, spread over the broker's partitions, in
// one pipelined call, so they reach the server faster than a client reads them.
func produceBurst(t *testing.T, b *broker, n, partitions int, key string) {
	t.Helper()
	value := sarama.StringEncoder(`"` + strings.Repeat("x", 1_000_000-2) + `"`)
	burst := make([]*sarama.ProducerMessage, n)
	for i := range burst {
		burst[i] = &sarama.ProducerMessage{Topic: "trades", Partition: int32(i % partitions), Key: sarama.StringEncoder(key), Value: value}
	}
	pcfg := sarama.NewConfig()
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	pcfg.Producer.MaxMessageBytes = 1 << 20 // one record per batch: the broker takes at most 1 MiB per batch
	bp, err := sarama.NewSyncProducer([]string{b.addr()}, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close()
	if err := bp.SendMessages(burst); err != nil {
		t.Fatal(err)
	}
}
