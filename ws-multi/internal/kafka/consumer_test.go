// This file is duplicated from ws-single (internal/kafka/consumer_test.go) on purpose: the
// variants share the consumer and its tests.

package kafka

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

func TestConsumesEveryPartitionFromNewest(t *testing.T) {
	cluster := kafkatest.NewCluster(t, 0)
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	// Before the start: skipped by "newest" with no history to load (TestWarmStart loads one).
	kafkatest.Produce(t, brokers, kafkatest.Record("trades", 0, "OLD", `1`))

	r := startWith(t, brokers, config.StartNewest, history.Config{}, nil)
	await.True(t, 20*time.Second, r.c.Attached, "attached")
	if got := testutil.ToFloat64(r.m.KafkaAttached); got != 1 {
		t.Fatalf("ws_kafka_attached = %v, want 1", got)
	}

	withHeader := kafkatest.Record("tickers", 1, "BTC-USD", "not json")
	withHeader.Headers = []sarama.RecordHeader{{Key: []byte("channel"), Value: []byte("tickers:x")}}
	kafkatest.Produce(t, brokers,
		kafkatest.Record("trades", 0, "BTC-USD", `{ "price": "1.5" }`),
		kafkatest.Record("trades", 1, "ETH-USD", ``),
		kafkatest.Record("trades", 0, "BTC-USD", `2`),
		kafkatest.Record("tickers", 0, "", `3`),
		withHeader,
	)
	got := receive(t, r.pub, 5)
	byChannel := map[string][]string{}
	for _, m := range got {
		byChannel[m.Channel] = append(byChannel[m.Channel], string(m.Wire))
		if m.Time.IsZero() {
			t.Errorf("record %s has no timestamp", m.Wire)
		}
	}
	checks := []struct{ channel, wire string }{
		{"trades:BTC-USD", `"topic":"trades","partition":0,"offset":1,`},
		{"trades:BTC-USD", `"data":{"price":"1.5"}}`},
		{"trades:ETH-USD", `"partition":1,"offset":0,`},
		{"trades:ETH-USD", `"data":null}`},
		{"tickers", `"channel":"tickers","topic":"tickers"`},
		{"tickers:x", `"channel":"tickers:x","topic":"tickers","partition":1,"offset":0,`},
		{"tickers:x", `"data":"not json"}`},
	}
	for _, c := range checks {
		if !strings.Contains(strings.Join(byChannel[c.channel], "\n"), c.wire) {
			t.Errorf("channel %s: %q does not contain %s", c.channel, byChannel[c.channel], c.wire)
		}
	}
	// Offset order within a partition.
	if w := byChannel["trades:BTC-USD"]; len(w) != 2 || !strings.Contains(w[1], `"offset":2,`) {
		t.Errorf("trades:BTC-USD = %q, want offsets 1 then 2", w)
	}
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(r.m.KafkaRecords.WithLabelValues("trades")) == 3 &&
			testutil.ToFloat64(r.m.KafkaRecords.WithLabelValues("tickers")) == 2
	}, "records counted")
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(r.m.KafkaLag.WithLabelValues("trades", "0")) == 0 &&
			testutil.CollectAndCount(r.m.KafkaLag) == 4
	}, "lag series")
}

func TestOldestStartsAtTheBeginning(t *testing.T) {
	cluster := kafkatest.NewCluster(t, 0)
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	kafkatest.Produce(t, brokers, kafkatest.Record("trades", 0, "A", `1`), kafkatest.Record("trades", 0, "A", `2`))
	r := startConsumer(t, brokers, config.StartOldest)
	got := receive(t, r.pub, 2)
	if !strings.Contains(string(got[0].Wire), `"offset":0,`) || !strings.Contains(string(got[1].Wire), `"offset":1,`) {
		t.Fatalf("got %s / %s, want offsets 0 and 1", got[0].Wire, got[1].Wire)
	}
}

// produce sends n records to partition of "trades", the first with a channel header.
func produce(t *testing.T, brokers []string, partition int32, n int) {
	t.Helper()
	var msgs []*sarama.ProducerMessage
	for i := range n {
		msg := kafkatest.Record("trades", partition, "BTC-USD", fmt.Sprintf(`{"i":%d}`, i))
		if i == 0 {
			msg.Headers = []sarama.RecordHeader{{Key: []byte("channel"), Value: []byte("trades:special")}}
		}
		msgs = append(msgs, msg)
	}
	kafkatest.Produce(t, brokers, msgs...)
}

// offsets returns the offsets of partition's records among msgs, in order.
func offsets(msgs []*protocol.Message, partition int32) []int64 {
	var out []int64
	for _, m := range msgs {
		if m.Partition == partition {
			out = append(out, m.Offset)
		}
	}
	return out
}

// TestConsumeOutageAndResume: records from the oldest, per-partition order, a channel
// header, the lag gauges; then the broker goes away (detached, counted) and comes back empty
// on the same port, so the saved offsets are out of range and consumption restarts at the
// start policy.
func TestConsumeOutageAndResume(t *testing.T) {
	cl := kafkatest.NewCluster(t, 0)
	defer func() { cl.Close() }()
	brokers := cl.ListenAddrs()
	produce(t, brokers, 0, 3) // before the consumer starts: read because oldest

	r := startConsumer(t, brokers, config.StartOldest, func(c *Config) { c.Topics = []string{"trades"} })
	await.True(t, 15*time.Second, r.c.Attached, "attached")
	produce(t, brokers, 1, 2)
	got := receive(t, r.pub, 5)
	if o := offsets(got, 0); fmt.Sprint(o) != "[0 1 2]" {
		t.Errorf("partition 0 offsets = %v", o)
	}
	if o := offsets(got, 1); fmt.Sprint(o) != "[0 1]" {
		t.Errorf("partition 1 offsets = %v", o)
	}
	if want := `"channel":"trades:special"`; !strings.Contains(string(got[0].Wire), want) {
		t.Errorf("header channel not used: %s", got[0].Wire)
	}
	if n := testutil.ToFloat64(r.m.KafkaRecords.WithLabelValues("trades")); n != 5 {
		t.Errorf("records consumed = %v", n)
	}
	if a := testutil.ToFloat64(r.m.KafkaAttached); a != 1 {
		t.Errorf("ws_kafka_attached = %v", a)
	}
	// Lag: the high-water mark minus the next offset, polled every LagInterval; a series per
	// partition, 0 once caught up.
	await.True(t, 15*time.Second, func() bool {
		return testutil.ToFloat64(r.m.KafkaLag.WithLabelValues("trades", "0")) == 0 &&
			testutil.CollectAndCount(r.m.KafkaLag) == 2
	}, "lag 0 when caught up")

	// Outage: the broker goes away; the consumer notices and detaches.
	port := kafkatest.Port(t, cl)
	cl.Close()
	await.True(t, 15*time.Second, func() bool { return !r.c.Attached() }, "detached")
	if a := testutil.ToFloat64(r.m.KafkaAttached); a != 0 {
		t.Errorf("ws_kafka_attached = %v during the outage", a)
	}
	if n := testutil.ToFloat64(r.m.KafkaErrors); n < 1 {
		t.Errorf("ws_kafka_errors_total = %v during an outage", n)
	}
	// The broker comes back empty on the same port, its topics created anew (new topic ids):
	// the saved offsets (3 and 2) mean nothing, so each partition announces the gap and
	// restarts at the policy (oldest), picking up new records.
	cl = kafkatest.NewCluster(t, port)
	await.True(t, 15*time.Second, r.c.Attached, "re-attached")
	kafkatest.Produce(t, brokers, kafkatest.Record("trades", 0, "K", `"after"`))
	after := receive(t, r.pub, 3)
	for i, want := range []string{
		`{"op":"gap","topic":"trades","partition":0,"from":3,"to":-1,"reason":"epoch_changed"}`,
		`{"op":"gap","topic":"trades","partition":1,"from":2,"to":-1,"reason":"epoch_changed"}`,
	} {
		if w := string(after[i].Wire); w != want {
			t.Errorf("after the restart got %s, want %s", w, want)
		}
	}
	if w := string(after[2].Wire); !strings.Contains(w, `"partition":0,"offset":0,`) || !strings.Contains(w, `"data":"after"`) {
		t.Errorf("after the restart got %s", w)
	}
	r.stop()
}
