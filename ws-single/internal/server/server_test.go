package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"
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

func TestAbuseClosesWithItsCode(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.ReadLimit = 256
		c.RateLimit = 1
		c.RateBurst = 3
	})
	tests := []struct {
		name   string
		abuse  func(c *client)
		code   websocket.StatusCode
		reason string
		metric string
	}{
		{"binary", func(c *client) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.ws.Write(ctx, websocket.MessageBinary, []byte(`{"op":"ping"}`))
		}, websocket.StatusUnsupportedData, "binary", "binary"},
		{"read limit", func(c *client) {
			c.send(`{"op":"ping","pad":"` + strings.Repeat("x", 300) + `"}`)
		}, websocket.StatusMessageTooBig, "", "read_limit"},
		{"rate limit", func(c *client) {
			for range 6 {
				c.send(`{"op":"ping"}`)
			}
		}, websocket.StatusPolicyViolation, "rate_limit", "rate_limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.connect()
			c.t = t
			tt.abuse(c)
			c.expectClose(tt.code, tt.reason)
			await.True(t, 20*time.Second, func() bool {
				return testutil.ToFloat64(f.m.Disconnects.WithLabelValues(tt.metric)) == 1
			}, "disconnect counted")
		})
	}
}

func TestUpgradeRejections(t *testing.T) {
	t.Run("origin", func(t *testing.T) {
		f := start(t, func(c *config.Config, _ *setup) { c.AllowedOrigins = []string{"*.example.com"} })
		_, resp, err := f.dial(&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.test"}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin dial = %v, %v; want 403", resp, err)
		}
		ws, _, err := f.dial(&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://app.example.com"}}})
		if err != nil {
			t.Fatalf("allowed origin: %v", err)
		}
		ws.CloseNow()
		if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("origin")); got != 1 {
			t.Fatalf("rejected{origin} = %v, want 1", got)
		}
	})
	t.Run("over capacity", func(t *testing.T) {
		f := start(t, func(_ *config.Config, o *setup) { o.maxConns = 1 })
		first := f.connect()
		second := f.connect()
		second.expectClose(websocket.StatusTryAgainLater, "over_capacity")
		first.send(`{"op":"ping","id":"1"}`)
		first.expect(map[string]any{"op": "pong"})
		if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("max_connections")); got != 1 {
			t.Fatalf("rejected{max_connections} = %v, want 1", got)
		}
	})
	t.Run("cpu", func(t *testing.T) {
		f := start(t, func(_ *config.Config, o *setup) { o.admission = allow{ok: false, retry: 2500 * time.Millisecond} })
		_, resp, err := f.dial(nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" {
			t.Fatalf("dial under CPU pressure = %v, %v; want 503 with Retry-After 3", resp, err)
		}
		if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("cpu")); got != 1 {
			t.Fatalf("rejected{cpu} = %v, want 1", got)
		}
	})
	t.Run("plain http", func(t *testing.T) {
		f := start(t)
		resp, err := f.get("/ws")
		if err != nil || resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("GET /ws = %v, %v; want 426", resp, err)
		}
	})
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
	for round := 0; testutil.ToFloat64(f.m.SendQueueOverflow) == 0; round++ {
		if round == 1000 {
			t.Fatal("slow client not cut after 1000 rounds")
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

func TestBrokerOutageKeepsClients(t *testing.T) {
	f := start(t)
	c := f.connect()
	c.send(`{"op":"subscribe","channels":["trades:BTC"]}`)
	c.expect(map[string]any{"op": "subscribed"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC", `1`), kafkatest.Record("trades", 0, "BTC", `2`))
	c.expect(map[string]any{"data": 1})
	c.expect(map[string]any{"data": 2})

	port := f.cluster.ListenAddrs()[0]
	f.cluster.Close()
	f.waitStatus("/readyz", http.StatusServiceUnavailable)
	if got := testutil.ToFloat64(f.m.KafkaAttached); got != 0 {
		t.Fatalf("ws_kafka_attached = %v during the outage", got)
	}
	c.send(`{"op":"ping","id":"during"}`)
	c.expect(map[string]any{"op": "pong", "id": "during"})

	_, p, _ := strings.Cut(port, ":")
	var n int
	for _, ch := range p {
		n = n*10 + int(ch-'0')
	}
	f.cluster = kafkatest.NewCluster(t, n)
	f.waitStatus("/readyz", http.StatusOK)
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC", `"after restart"`))
	c.expect(map[string]any{"op": "message", "data": "after restart", "offset": 0})
	if testutil.ToFloat64(f.m.KafkaErrors) == 0 {
		t.Fatal("ws_kafka_errors_total = 0 after an outage")
	}
}

func TestDrainClosesEveryClientWith1001(t *testing.T) {
	f := start(t)
	var clients []*client
	for range 3 {
		c := f.connect()
		c.send(`{"op":"ping"}`)
		c.expect(map[string]any{"op": "pong"})
		clients = append(clients, c)
	}
	// The clients are not reading yet, so the drain waits for their close
	// replies: meanwhile readiness and upgrades answer 503.
	f.cancel()
	f.waitStatus("/readyz", http.StatusServiceUnavailable)
	_, resp, err := f.dial(nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("dial while draining = %v, %v; want 503 with Retry-After", resp, err)
	}
	for _, c := range clients {
		c.expectClose(websocket.StatusGoingAway, "shutdown")
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Serve() = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	f.cancel = nil
	if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues("shutdown")); got != 3 {
		t.Fatalf("disconnects{shutdown} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("draining")); got != 1 {
		t.Fatalf("rejected{draining} = %v, want 1", got)
	}
}

func TestHealthAndDemoPage(t *testing.T) {
	f := start(t)
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		resp, err := f.get(path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %v, %v", path, resp, err)
		}
	}
	page, _ := web.ReadFile("web/index.html")
	for _, id := range []string{`id="status"`, `id="count"`, `id="messages"`, `id="channel"`, `id="subscribe"`, `"/ws"`, "trades:BTC-USD"} {
		if !strings.Contains(string(page), id) {
			t.Errorf("demo page lacks %s", id)
		}
	}
}
