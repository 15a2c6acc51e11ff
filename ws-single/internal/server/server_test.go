// This file is duplicated in ws-multi (internal/server/server_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
)

func TestSubscribeReceiveUnsubscribe(t *testing.T) {
	f := start(t)
	c := f.connect()
	c.send(`{"op":"subscribe","id":"1","channels":["trades:BTC-USD","tickers:*","trades:BTC-USD"]}`)
	c.expect(map[string]any{"op": "subscribed", "id": "1", "channels": []any{"trades:BTC-USD", "tickers:*"}})
	both := f.connect()
	both.send(`{"op":"subscribe","channels":["trades:BTC-USD","trades:*"]}`)
	both.expect(map[string]any{"op": "subscribed"})

	override := kafkatest.Record("tickers", 1, "ignored", `{"p":1}`)
	override.Headers = []sarama.RecordHeader{{Key: []byte("channel"), Value: []byte("tickers:ETH-USD")}}
	kafkatest.Produce(t, f.brokers,
		kafkatest.Record("trades", 0, "BTC-USD", `{"price": "1"}`),
		kafkatest.Record("trades", 1, "ETH-USD", `{"price": "9"}`), // not subscribed by c
		kafkatest.Record("trades", 0, "BTC-USD", `2`),
		kafkatest.Record("tickers", 0, "SOL-USD", `plain text`),
		override,
		kafkatest.Record("trades", 0, "BTC-USD", ``),
	)
	// One partition's records arrive in offset order; across partitions any order.
	got := map[string][]map[string]any{}
	for range 5 {
		m := c.expect(map[string]any{"op": "message"})
		got[m["channel"].(string)] = append(got[m["channel"].(string)], m)
	}
	btc := got["trades:BTC-USD"]
	if len(btc) != 3 || btc[0]["offset"] != 0.0 || btc[1]["offset"] != 1.0 || btc[2]["offset"] != 2.0 {
		t.Fatalf("trades:BTC-USD = %v, want offsets 0, 1, 2", btc)
	}
	if btc[0]["data"].(map[string]any)["price"] != "1" || btc[1]["data"] != 2.0 || btc[2]["data"] != nil {
		t.Fatalf("trades:BTC-USD data = %v %v %v", btc[0]["data"], btc[1]["data"], btc[2]["data"])
	}
	if sol := got["tickers:SOL-USD"]; len(sol) != 1 || sol[0]["data"] != "plain text" || sol[0]["topic"] != "tickers" {
		t.Fatalf("tickers:SOL-USD = %v", sol)
	}
	if eth := got["tickers:ETH-USD"]; len(eth) != 1 || eth[0]["partition"] != 1.0 {
		t.Fatalf("header override = %v", eth)
	}
	// Subscribed to the channel and its wildcard: every trades record once
	// (the pong right after the fourth proves there is no duplicate).
	seen := map[string]int{}
	for range 4 {
		m := both.expect(map[string]any{"op": "message", "topic": "trades"})
		seen[m["channel"].(string)]++
	}
	if seen["trades:BTC-USD"] != 3 || seen["trades:ETH-USD"] != 1 {
		t.Fatalf("channel and wildcard subscriber got %v", seen)
	}
	both.send(`{"op":"ping","id":"p"}`)
	both.expect(map[string]any{"op": "pong", "id": "p"})

	c.send(`{"op":"unsubscribe","id":"2","channels":["trades:BTC-USD","never"]}`)
	c.expect(map[string]any{"op": "unsubscribed", "id": "2", "channels": []any{"trades:BTC-USD", "never"}})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC-USD", `3`), kafkatest.Record("tickers", 0, "X", `4`))
	c.expect(map[string]any{"op": "message", "channel": "tickers:X", "data": 4})

	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(f.m.Connections) == 2 && testutil.ToFloat64(f.m.Subscriptions) == 3 &&
			testutil.ToFloat64(f.m.KafkaRecords.WithLabelValues("trades")) == 5 &&
			testutil.ToFloat64(f.m.MessagesDelivered) >= 12
	}, "metrics")
	resp, err := f.get("/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %v, %v", resp, err)
	}
}

func TestErrorRepliesKeepTheConnection(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.MaxSubscriptions = 2 })
	c := f.connect()
	tests := []struct {
		name, in, code string
		id             any
	}{
		{"invalid_json", `{"op":`, "invalid_json", nil},
		{"not an object", `[1,2]`, "invalid_json", nil},
		{"invalid_request", `{"op":"subscribe","id":"a","channels":[]}`, "invalid_request", "a"},
		{"id too long", `{"op":"ping","id":"` + strings.Repeat("x", 65) + `"}`, "invalid_request", nil},
		{"unknown_op", `{"op":"publish","id":"b"}`, "unknown_op", "b"},
		{"invalid_channel", `{"op":"subscribe","id":"c","channels":["ok","bad channel"]}`, "invalid_channel", "c"},
		{"too_many_subscriptions", `{"op":"subscribe","id":"d","channels":["a","b","c"]}`, "too_many_subscriptions", "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.send(tt.in)
			m := c.expect(map[string]any{"op": "error", "code": tt.code})
			if id, ok := m["id"]; (tt.id == nil && ok) || (tt.id != nil && id != tt.id) {
				t.Fatalf("id = %v, want %v", m["id"], tt.id)
			}
			if m["message"] == "" {
				t.Fatal("error without a message")
			}
		})
	}
	c.t = t
	// Nothing of the failed subscribes stuck: two channels still fit.
	c.send(`{"op":"subscribe","id":"e","channels":["a","b"]}`)
	c.expect(map[string]any{"op": "subscribed", "id": "e"})
	for _, code := range []string{"invalid_json", "invalid_request", "unknown_op", "invalid_channel", "too_many_subscriptions"} {
		want := 1.0
		if code == "invalid_json" || code == "invalid_request" {
			want = 2
		}
		if got := testutil.ToFloat64(f.m.ProtocolErrors.WithLabelValues(code)); got != want {
			t.Errorf("ws_protocol_errors_total{code=%q} = %v, want %v", code, got, want)
		}
	}
}

func TestBrokerOutageKeepsClients(t *testing.T) {
	f := start(t)
	c := f.connect()
	c.send(`{"op":"subscribe","channels":["trades:BTC"]}`)
	c.expect(map[string]any{"op": "subscribed"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC", `1`), kafkatest.Record("trades", 0, "BTC", `2`))
	c.expect(map[string]any{"data": 1})
	c.expect(map[string]any{"data": 2})

	port := kafkatest.Port(t, f.cluster)
	f.cluster.Close()
	f.waitStatus("/readyz", http.StatusServiceUnavailable)
	if got := testutil.ToFloat64(f.m.KafkaAttached); got != 0 {
		t.Fatalf("ws_kafka_attached = %v during the outage", got)
	}
	c.send(`{"op":"ping","id":"during"}`)
	c.expect(map[string]any{"op": "pong", "id": "during"})

	f.cluster = kafkatest.NewCluster(t, port)
	f.waitStatus("/readyz", http.StatusOK)
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC", `"after restart"`))
	// The new broker's topics are new topics (new ids): before the message, the client is
	// told that what it had of trades is void, one gap per partition.
	var gaps []map[string]any
	for {
		line, err := c.next(10 * time.Second)
		if err != nil {
			t.Fatalf("reading after the restart: %v (gaps %v)", err, gaps)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m["op"] == "gap" {
			gaps = append(gaps, m)
			continue
		}
		if m["op"] != "message" || m["data"] != "after restart" || m["offset"] != 0.0 {
			t.Fatalf("line %s, want the message after the restart", line)
		}
		break
	}
	found := false
	for _, g := range gaps {
		if g["topic"] == "trades" && g["partition"] == 0.0 && g["reason"] == "epoch_changed" && g["from"] == 2.0 {
			found = true
		}
	}
	if !found {
		t.Errorf("gaps before the message = %v, want an epoch_changed gap on trades/0 from 2", gaps)
	}
	if testutil.ToFloat64(f.m.KafkaErrors) == 0 {
		t.Fatal("ws_kafka_errors_total = 0 after an outage")
	}
}

// TestSkippedRecordReachesSubscribers: a record over WS_MAX_RECORD_BYTES reaches
// its exact and wildcard subscribers, once each, as the skipped line, in its
// place among the partition's records.
func TestSkippedRecordReachesSubscribers(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.MaxRecordBytes = 1000 })
	exact, wild := f.connect(), f.connect()
	exact.send(`{"op":"subscribe","channels":["trades:BTC-USD","trades:*"]}`)
	exact.expect(map[string]any{"op": "subscribed"})
	wild.send(`{"op":"subscribe","channels":["trades:*"]}`)
	wild.expect(map[string]any{"op": "subscribed"})
	big := kafkatest.Record("trades", 0, "BTC-USD", strings.Repeat("x", 2000))
	big.Timestamp = time.UnixMilli(1700000000123)
	big.Headers = []sarama.RecordHeader{{Key: []byte("other"), Value: []byte("ignored")}}
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC-USD", `1`), big, kafkatest.Record("trades", 0, "BTC-USD", `2`))
	want := `{"op":"skipped","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":1,"ts":1700000000123,"reason":"too_large","size":2000}`
	for _, c := range []*client{exact, wild} {
		c.expect(map[string]any{"op": "message", "offset": 0})
		line, err := c.next(10 * time.Second)
		if err != nil || line != want {
			t.Fatalf("line %q, %v; want %s", line, err, want)
		}
		c.expect(map[string]any{"op": "message", "offset": 2})
	}
	if got := testutil.ToFloat64(f.m.KafkaSkipped.WithLabelValues("trades", "too_large")); got != 1 {
		t.Fatalf("skipped{trades,too_large} = %v, want 1", got)
	}
}
