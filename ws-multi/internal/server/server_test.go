package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gometrics "github.com/rcrowley/go-metrics"
	"go.uber.org/goleak"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
)

func TestMain(m *testing.M) {
	// As in main: sarama must not start go-metrics meter goroutines.
	gometrics.UseNilMetrics = true
	goleak.VerifyTestMain(m)
}

func TestSubscribeWildcardUnsubscribe(t *testing.T) {
	b := startBroker(t, 2)
	e := startEnv(t, b)

	exact, wild, both := e.mustDial(), e.mustDial(), e.mustDial()
	exact.subscribe("trades:BTC-USD")
	wild.subscribe("trades:*")
	both.subscribe("trades:BTC-USD", "trades:*", "tickers:ETH-USD")
	colExact, colWild, colBoth := exact.collect(), wild.collect(), both.collect()

	var want []int64 // offsets of trades:BTC-USD on partition 0
	for i := range 6 {
		key := []string{"BTC-USD", "ETH-USD"}[i%2]
		off := b.send(t, "trades", 0, key, fmt.Sprintf(`{"i":%d}`, i))
		if key == "BTC-USD" {
			want = append(want, off)
		}
	}
	b.send(t, "trades", 1, "", "plain text") // channel "trades"
	b.send(t, "tickers", 0, "ETH-USD", "")   // data null
	await.True(t, 20*time.Second, func() bool { return len(colWild.messages()) == 7 }, "wildcard gets 7 records")
	await.True(t, 20*time.Second, func() bool { return len(colBoth.messages()) == 8 }, "both gets 8 records")
	await.True(t, 20*time.Second, func() bool { return len(colExact.messages()) == 3 }, "exact gets 3 records")

	var got []int64
	for _, l := range colExact.messages() {
		if l.Channel != "trades:BTC-USD" || l.Topic != "trades" || l.Partition != 0 {
			t.Errorf("exact client got %+v", l)
		}
		got = append(got, l.Offset)
	}
	if !slices.Equal(got, want) {
		t.Errorf("exact offsets = %v, want %v", got, want)
	}
	msgs := colBoth.messages()
	seen := map[string]bool{}
	for _, l := range msgs {
		k := fmt.Sprintf("%s/%d/%d", l.Topic, l.Partition, l.Offset)
		if seen[k] {
			t.Errorf("record %s delivered twice to a client subscribed to channel and wildcard", k)
		}
		seen[k] = true
	}
	for _, l := range msgs {
		switch {
		case l.Channel == "trades" && string(l.Data) != `"plain text"`:
			t.Errorf("non-JSON value = %s", l.Data)
		case l.Channel == "tickers:ETH-USD" && string(l.Data) != "null":
			t.Errorf("empty value = %s", l.Data)
		}
	}
	if got := testutil.ToFloat64(e.metrics.KafkaRecords.WithLabelValues("trades")); got != 7 {
		t.Errorf("ws_kafka_records_consumed_total{trades} = %v", got)
	}

	// Unsubscribe: a ping after it proves the record that follows never arrives.
	wild2 := e.mustDial()
	wild2.subscribe("trades:*")
	if r := wild2.request(`{"op":"unsubscribe","id":"u","channels":["trades:*"]}`); r.Op != "unsubscribed" || *r.ID != "u" {
		t.Fatalf("unsubscribe reply %+v", r)
	}
	b.send(t, "trades", 0, "BTC-USD", "1")
	await.True(t, 20*time.Second, func() bool { return len(colExact.messages()) == 4 }, "exact gets the 4th record")
	if r := wild2.request(`{"op":"ping","id":"p"}`); r.Op != "pong" {
		t.Fatalf("ping reply %+v", r)
	}
	if len(wild2.pending) != 0 {
		t.Errorf("unsubscribed client got %+v", wild2.pending)
	}
}

func TestErrorRepliesAndCloseCodes(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.MaxSubscriptions = 2
		cfg.ReadLimit = 256
		cfg.RateLimit = 5
		cfg.RateBurst = 5
	})
	c := e.mustDial()
	for _, tt := range []struct {
		frame, code string
	}{
		{`hello`, "invalid_json"},
		{`{"op":"subscribe","id":"1"}`, "invalid_request"},
		{`{"op":"publish","id":"1"}`, "unknown_op"},
	} {
		r := c.request(tt.frame)
		if r.Op != "error" || r.Code != tt.code {
			t.Errorf("%s: reply %+v, want error %s", tt.frame, r, tt.code)
		}
	}
	// New connection: the rate limit counts every frame.
	c = e.mustDial()
	for _, tt := range []struct {
		frame, code string
	}{
		{`{"op":"subscribe","id":"2","channels":["a b"]}`, "invalid_channel"},
		{`{"op":"subscribe","id":"3","channels":["a","b","c"]}`, "too_many_subscriptions"},
	} {
		r := c.request(tt.frame)
		if r.Op != "error" || r.Code != tt.code || r.ID == nil || *r.ID == "" {
			t.Errorf("%s: reply %+v, want error %s with id", tt.frame, r, tt.code)
		}
	}
	if got := testutil.ToFloat64(e.metrics.ProtocolErrors.WithLabelValues("too_many_subscriptions")); got != 1 {
		t.Errorf("ws_protocol_errors_total{too_many_subscriptions} = %v", got)
	}

	closes := []struct {
		name   string
		act    func(c *client)
		code   websocket.StatusCode
		reason string
		label  string
	}{
		{name: "read limit", act: func(c *client) { c.send(`{"op":"ping","id":"` + strings.Repeat("x", 300) + `"}`) },
			code: websocket.StatusMessageTooBig, label: "read_limit"},
		{name: "binary", act: func(c *client) {
			_ = c.conn.Write(t.Context(), websocket.MessageBinary, []byte("{}"))
		}, code: websocket.StatusUnsupportedData, reason: "binary", label: "binary"},
		{name: "rate limit", act: func(c *client) {
			for range 20 {
				if err := c.conn.Write(t.Context(), websocket.MessageText, []byte(`{"op":"ping"}`)); err != nil {
					return
				}
			}
		}, code: websocket.StatusPolicyViolation, reason: "rate_limit", label: "rate_limit"},
	}
	for _, tt := range closes {
		t.Run(tt.name, func(t *testing.T) {
			c := e.mustDial()
			tt.act(c)
			code, reason := c.closeStatus(10 * time.Second)
			if code != tt.code || (tt.reason != "" && reason != tt.reason) {
				t.Errorf("closed with %d %q, want %d %q", code, reason, tt.code, tt.reason)
			}
			await.True(t, 20*time.Second, func() bool {
				return testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues(tt.label)) == 1
			}, "disconnect counted")
		})
	}
}

func TestBrokerOutageAndRecovery(t *testing.T) {
	b := startBroker(t, 2)
	e := startEnv(t, b)
	c := e.mustDial()
	c.subscribe("trades:*")
	col := c.collect()
	b.send(t, "trades", 0, "k", "1")
	await.True(t, 20*time.Second, func() bool { return len(col.messages()) == 1 }, "first record")

	b.stop()
	e.waitReady(http.StatusServiceUnavailable)
	if got := testutil.ToFloat64(e.metrics.KafkaAttached); got != 0 {
		t.Errorf("ws_kafka_attached = %v during the outage", got)
	}
	if got := testutil.ToFloat64(e.metrics.Connections); got != 1 {
		t.Errorf("client dropped during the outage: ws_connections = %v", got)
	}
	b.start()
	e.waitReady(http.StatusOK)
	b.send(t, "trades", 1, "k", "2")
	b.send(t, "trades", 0, "k", "3")
	await.True(t, 20*time.Second, func() bool { return len(col.messages()) == 3 }, "records after the restart")
	if got := testutil.ToFloat64(e.metrics.KafkaErrors); got < 1 {
		t.Errorf("ws_kafka_errors_total = %v after an outage", got)
	}
}

// TestOrderUnderParallelPartitions produces to many partitions at once and checks that every
// client, on every shard, sees each partition's offsets in order and without gaps.
func TestOrderUnderParallelPartitions(t *testing.T) {
	const partitions, perPartition, clients = 8, 150, 9
	b := startBroker(t, partitions)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) { cfg.Shards = 3 })
	var cols []*collector
	for range clients {
		c := e.mustDial()
		c.subscribe("trades:*")
		cols = append(cols, c.collect())
	}
	// One pipelined call: the partitions' records reach the broker, and the consumer's
	// partition goroutines, interleaved.
	var msgs []*sarama.ProducerMessage
	for i := range perPartition {
		for part := range int32(partitions) {
			msgs = append(msgs, producerMessage(part, i))
		}
	}
	kafkatest.Produce(t, []string{b.addr()}, msgs...)
	for i, col := range cols {
		await.True(t, 20*time.Second, func() bool {
			return len(col.messages()) == partitions*perPartition
		}, fmt.Sprintf("client %d gets everything", i))
		next := make(map[int32]int64)
		for _, l := range col.messages() {
			if l.Offset != next[l.Partition] {
				t.Fatalf("client %d: partition %d offset %d, want %d", i, l.Partition, l.Offset, next[l.Partition])
			}
			next[l.Partition]++
		}
	}
}

func producerMessage(partition int32, i int) *sarama.ProducerMessage {
	return kafkatest.Record("trades", partition, fmt.Sprintf("K%d", i%5), fmt.Sprintf(`{"i":%d}`, i))
}

// TestSkippedRecordIsAnnounced: a record over WS_MAX_RECORD_BYTES reaches its subscribers as
// the skipped line, in its place in the partition's order.
func TestSkippedRecordIsAnnounced(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) { cfg.MaxRecordBytes = 1000 })
	exact, wild := e.mustDial(), e.mustDial()
	exact.subscribe("trades:BTC-USD")
	wild.subscribe("trades:*")
	ts := time.UnixMilli(1700000000123)
	var msgs []*sarama.ProducerMessage
	for _, v := range []string{strings.Repeat("v", 2000), "1"} {
		m := kafkatest.Record("trades", 0, "BTC-USD", v)
		m.Timestamp = ts
		msgs = append(msgs, m)
	}
	kafkatest.Produce(t, []string{b.addr()}, msgs...)
	want := []string{
		`{"op":"skipped","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":0,"ts":1700000000123,"reason":"too_large","size":2000}`,
		`{"op":"message","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":1,"ts":1700000000123,"data":1}`,
	}
	for _, c := range []*client{exact, wild} {
		var got []string
		for len(got) < len(want) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, data, err := c.conn.Read(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, strings.Split(string(data), "\n")...)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if got := testutil.ToFloat64(e.metrics.KafkaSkipped.WithLabelValues("trades", "too_large")); got != 1 {
		t.Errorf("skipped{too_large} = %v, want 1", got)
	}
}

// collector reads every line of a client on its own goroutine.
type collector struct {
	mu    sync.Mutex
	lines []line
	done  chan struct{}
}

func (c *client) collect() *collector {
	col := &collector{done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for {
			l, err := c.next(time.Minute)
			if err != nil {
				return
			}
			col.mu.Lock()
			col.lines = append(col.lines, l)
			col.mu.Unlock()
		}
	}()
	c.t.Cleanup(func() {
		c.conn.CloseNow()
		<-col.done
	})
	return col
}

func (col *collector) messages() []line {
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []line
	for _, l := range col.lines {
		if l.Op == "message" {
			out = append(out, l)
		}
	}
	return out
}
