package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
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
	p := newProducer(t, b)

	exact, wild, both := e.mustDial(), e.mustDial(), e.mustDial()
	exact.subscribe("trades:BTC-USD")
	wild.subscribe("trades:*")
	both.subscribe("trades:BTC-USD", "trades:*", "tickers:ETH-USD")
	colExact, colWild, colBoth := exact.collect(), wild.collect(), both.collect()

	var want []int64 // offsets of trades:BTC-USD on partition 0
	for i := range 6 {
		key := []string{"BTC-USD", "ETH-USD"}[i%2]
		off := p.send(t, "trades", 0, key, fmt.Sprintf(`{"i":%d}`, i))
		if key == "BTC-USD" {
			want = append(want, off)
		}
	}
	p.send(t, "trades", 1, "", "plain text") // channel "trades"
	p.send(t, "tickers", 0, "ETH-USD", "")   // data null
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
	p.send(t, "trades", 0, "BTC-USD", "1")
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

func TestHTTPRefusals(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, maxConns *int) {
		cfg.AllowedOrigins = []string{"*.example.com"}
		*maxConns = 2
	})

	// Origin: same-origin, allowed pattern and no Origin pass; others get 403.
	for _, origin := range []string{"", e.url, "https://app.example.com"} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, _, err := e.dial(h)
		if err != nil {
			t.Fatalf("Origin %q refused: %v", origin, err)
		}
		c.conn.Close(websocket.StatusNormalClosure, "")
	}
	_, resp, err := e.dial(http.Header{"Origin": {"https://evil.test"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin upgrade: err %v, resp %v, want 403", err, resp)
	}
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("origin")); got != 1 {
		t.Errorf("rejected{origin} = %v", got)
	}

	// CPU admission: 503 with Retry-After.
	e.admission.refuse.Store(true)
	_, resp, err = e.dial(nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("CPU refusal: err %v, resp %+v, want 503 Retry-After 2", err, resp)
	}
	e.admission.refuse.Store(false)
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("cpu")); got != 1 {
		t.Errorf("rejected{cpu} = %v", got)
	}

	// Capacity: the third connection is upgraded and closed with 1013.
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 0 }, "earlier connections gone")
	c1, c2 := e.mustDial(), e.mustDial()
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 2 }, "two connections")
	c3 := e.mustDial()
	if code, reason := c3.closeStatus(10 * time.Second); code != websocket.StatusTryAgainLater || reason != "over_capacity" {
		t.Errorf("over capacity: closed with %d %q, want 1013 over_capacity", code, reason)
	}
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("max_connections")); got != 1 {
		t.Errorf("rejected{max_connections} = %v", got)
	}
	c1.conn.Close(websocket.StatusNormalClosure, "")
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 1 }, "slot back")
	c4 := e.mustDial()
	if r := c4.request(`{"op":"ping","id":"x"}`); r.Op != "pong" {
		t.Errorf("after a slot came back: %+v", r)
	}
	_ = c2

	// Plain endpoints.
	if resp, body := e.get("/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}
	if resp, body := e.get("/metrics", nil); resp.StatusCode != 200 || !strings.Contains(body, `ws_build_info{`) || !strings.Contains(body, "ws_shard_queue_depth") {
		t.Errorf("/metrics = %d, missing series", resp.StatusCode)
	}
	if resp, body := e.get("/", nil); resp.StatusCode != 200 || !strings.Contains(body, `id="subscribe"`) {
		t.Errorf("/ = %d, no demo page", resp.StatusCode)
	}
	if resp, _ := e.get("/ws", nil); resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET /ws = %d, want 426", resp.StatusCode)
	}
}

func TestSlowClientIsCutHealthyKeepsReceiving(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.SendQueueMessages = 16
		cfg.SendQueueBytes = 256 << 10
		cfg.WriteTimeout = 15 * time.Second // the stalled write must outlive the overflow
	})
	p := newProducer(t, b)
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
		p.send(t, "trades", 0, "BTC-USD", value)
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
	p.send(t, "trades", 0, "BTC-USD", "1")
	await.True(t, 20*time.Second, func() bool { return len(col.messages()) == sent+1 }, "healthy client still receiving")
}

func TestPingTimeout(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.PingInterval = 100 * time.Millisecond
		cfg.WriteTimeout = 300 * time.Millisecond
	})
	answering := e.mustDial()
	answering.collect() // reading answers pings
	silent := e.mustDial()
	_ = silent // never reads, so never answers a ping
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("ping_timeout")) == 1
	}, "ping_timeout")
	time.Sleep(500 * time.Millisecond)
	if got := testutil.ToFloat64(e.metrics.Connections); got != 1 {
		t.Errorf("ws_connections = %v, want the answering client only", got)
	}
}

func TestBrokerOutageAndRecovery(t *testing.T) {
	b := startBroker(t, 2)
	e := startEnv(t, b)
	p := newProducer(t, b)
	c := e.mustDial()
	c.subscribe("trades:*")
	col := c.collect()
	p.send(t, "trades", 0, "k", "1")
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
	p = newProducer(t, b)
	p.send(t, "trades", 1, "k", "2")
	p.send(t, "trades", 0, "k", "3")
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

// TestDrain cancels the server's context with two clients: one answers the close handshake at
// once, one never reads, which keeps the drain waiting until the shutdown timeout. Meanwhile
// /readyz and new upgrades answer 503; Serve returns nil at the end.
func TestDrain(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) { cfg.ShutdownTimeout = 2 * time.Second })
	polite, stuck := e.mustDial(), e.mustDial()
	polite.subscribe("trades:*")
	stuck.subscribe("trades:*")

	e.cancel()
	if code, reason := polite.closeStatus(5 * time.Second); code != websocket.StatusGoingAway || reason != "shutdown" {
		t.Errorf("closed with %d %q, want 1001 shutdown", code, reason)
	}
	// The stuck client holds the drain open: the server still answers, and refuses.
	if resp, _ := e.get("/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", resp.StatusCode)
	}
	_, resp, err := e.dial(nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("upgrade while draining: err %v, resp %v, want 503 with Retry-After", err, resp)
	}
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("draining")); got != 1 {
		t.Errorf("rejected{draining} = %v", got)
	}
	if err := e.stopServer(); err != nil {
		t.Errorf("Serve after drain = %v, want nil", err)
	}
	if got := testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("shutdown")); got != 2 {
		t.Errorf("disconnects{shutdown} = %v, want 2", got)
	}
}

func TestCheckHealth(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b)
	port := e.url[strings.LastIndex(e.url, ":")+1:]
	if err := CheckHealth(t.Context(), ":"+port); err != nil {
		t.Errorf("CheckHealth of a live server: %v", err)
	}
	if err := CheckHealth(t.Context(), "no-port"); err == nil {
		t.Error("CheckHealth accepted an address without a port")
	}
	if err := e.stopServer(); err != nil {
		t.Fatal(err)
	}
	if err := CheckHealth(t.Context(), ":"+port); err == nil {
		t.Error("CheckHealth of a stopped server succeeded")
	}
}
