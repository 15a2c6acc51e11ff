// This file is duplicated from ws-single (internal/kafka/record_test.go) on purpose: the
// variants share the consumer and its tests.

package kafka

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/readme"
)

// header returns a record of topic/partition 0 with the given "channel" headers.
func header(topic, key, value string, channels ...string) *sarama.ProducerMessage {
	m := kafkatest.Record(topic, 0, key, value)
	for _, ch := range channels {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte("channel"), Value: []byte(ch)})
	}
	return m
}

// TestChannelHeaderRule: a record's "channel" header is its channel only when it
// is the one such header and names a valid channel of the record's own topic;
// any other record with the header goes to nobody and is counted.
func TestChannelHeaderRule(t *testing.T) {
	cluster := kafkatest.NewCluster(t, 0)
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	r := startConsumer(t, brokers, config.StartNewest)
	await.True(t, 20*time.Second, r.c.Attached, "attached")
	if got := testutil.ToFloat64(r.m.KafkaSkipped.WithLabelValues("tickers", SkipInvalidChannel)); got != 0 {
		t.Fatalf("skipped{tickers,invalid_channel} = %v before any record", got)
	}

	tests := []struct {
		name    string
		record  *sarama.ProducerMessage
		channel string // "" = delivered to nobody
	}{
		{"no header", header("trades", "K", `1`), "trades:K"},
		{"own topic", header("trades", "K", `2`, "trades:X"), "trades:X"},
		{"the topic itself", header("trades", "K", `3`, "trades"), "trades"},
		{"another topic", header("trades", "K", `4`, "tickers:X"), ""},
		{"invalid", header("trades", "K", `5`, "trades:a b"), ""},
		{"wildcard", header("trades", "K", `6`, "trades:*"), ""},
		{"two headers", header("trades", "K", `7`, "trades:X", "trades:Y"), ""},
	}
	skipped := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One record at a time, followed by a marker: what arrives before the
			// marker is what the record produced.
			kafkatest.Produce(t, brokers, tt.record, kafkatest.Record("trades", 0, "marker", `0`))
			got := receive(t, r.pub, 1)[0]
			if tt.channel == "" {
				skipped++
				if got.Channel != "trades:marker" {
					t.Fatalf("a rejected record reached %q: %s", got.Channel, got.Wire)
				}
			} else {
				if got.Channel != tt.channel || !strings.Contains(string(got.Wire), `"channel":"`+tt.channel+`"`) {
					t.Fatalf("record on %q (%s), want %q", got.Channel, got.Wire, tt.channel)
				}
				receive(t, r.pub, 1) // the marker
			}
			if got := testutil.ToFloat64(r.m.KafkaSkipped.WithLabelValues("trades", SkipInvalidChannel)); got != float64(skipped) {
				t.Fatalf("skipped{trades,invalid_channel} = %v, want %d", got, skipped)
			}
		})
	}
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(r.m.KafkaRecords.WithLabelValues("trades")) == float64(2*len(tests))
	}, "every record counted as consumed")
}

// TestTooLargeRecordIsSkipped: a value longer than MaxRecordBytes is replaced, on
// its channel and in its offset order, by the skipped line.
func TestTooLargeRecordIsSkipped(t *testing.T) {
	cluster := kafkatest.NewCluster(t, 0)
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	r := startConsumer(t, brokers, config.StartNewest, func(c *Config) { c.MaxRecordBytes = 1000 })
	await.True(t, 20*time.Second, r.c.Attached, "attached")
	big := header("trades", "BTC-USD", strings.Repeat("x", 2000))
	big.Timestamp = time.UnixMilli(1700000000123)
	kafkatest.Produce(t, brokers,
		kafkatest.Record("trades", 0, "BTC-USD", strings.Repeat("y", 1000)), // at the limit: delivered
		big,
		kafkatest.Record("trades", 0, "BTC-USD", `"after"`),
	)
	got := receive(t, r.pub, 3)
	if !strings.Contains(string(got[0].Wire), `"op":"message"`) || !strings.Contains(string(got[2].Wire), `"data":"after"`) {
		t.Fatalf("neighbours = %s / %s", got[0].Wire, got[2].Wire)
	}
	want := `{"op":"skipped","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":1,"ts":1700000000123,"reason":"too_large","size":2000}`
	if string(got[1].Wire) != want || got[1].Channel != "trades:BTC-USD" || got[1].Topic != "trades" {
		t.Fatalf("skipped line = %s on %q, want %s", got[1].Wire, got[1].Channel, want)
	}
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(r.m.KafkaSkipped.WithLabelValues("trades", SkipTooLarge)) == 1 &&
			testutil.ToFloat64(r.m.KafkaRecords.WithLabelValues("trades")) == 3
	}, "counters")
}

// TestChannelHeaderRuleAndTooLarge produces records with every kind of "channel" header and
// one value over MaxRecordBytes to a kfake broker: records with a refused header reach
// nobody and are counted invalid_channel; the large one becomes its exact "skipped" line, in
// its offset order; every record counts as consumed.
func TestChannelHeaderRuleAndTooLarge(t *testing.T) {
	cl := kafkatest.NewCluster(t, 0)
	defer cl.Close()
	brokers := cl.ListenAddrs()

	header := func(values ...string) []sarama.RecordHeader {
		var hs []sarama.RecordHeader
		for _, v := range values {
			hs = append(hs, sarama.RecordHeader{Key: []byte("channel"), Value: []byte(v)})
		}
		return hs
	}
	ts := time.UnixMilli(1700000000123)
	records := []struct {
		key, value string
		headers    []sarama.RecordHeader
		want       string // the line's channel and op, "" when the record reaches nobody
	}{
		{key: "BTC-USD", value: "1", want: "message trades:BTC-USD"},
		{key: "BTC-USD", value: "2", headers: header("trades:special"), want: "message trades:special"},
		{key: "BTC-USD", value: "3", headers: header("tickers:X")},
		{key: "BTC-USD", value: "4", headers: header("a b")},
		{key: "BTC-USD", value: "5", headers: header("trades:a", "trades:a")},
		{key: "BTC-USD", value: "6", headers: header("trades:*")},
		{key: "BTC-USD", value: strings.Repeat("x", 101), want: "skipped trades:BTC-USD"},
		{key: "BTC-USD", value: strings.Repeat("y", 100), want: "message trades:BTC-USD"},
		{key: "k", value: "9", headers: header("trades"), want: "message trades"},
	}
	var msgs []*sarama.ProducerMessage
	for _, r := range records {
		msg := kafkatest.Record("trades", 0, r.key, r.value)
		msg.Timestamp, msg.Headers = ts, r.headers
		msgs = append(msgs, msg)
	}
	kafkatest.Produce(t, brokers, msgs...)

	r := startConsumer(t, brokers, config.StartOldest, func(c *Config) {
		c.Topics, c.MaxRecordBytes = []string{"trades"}, 100
	})
	m := r.m
	if n := testutil.CollectAndCount(m.KafkaSkipped); n != len(SkipReasons) {
		t.Fatalf("ws_kafka_records_skipped_total has %d series, want one per reason", n)
	}
	var want, got []string
	for i, r := range records {
		if r.want != "" {
			want = append(want, strconv.Itoa(i)+" "+r.want)
		}
	}
	published := receive(t, r.pub, len(want))
	await.True(t, 15*time.Second, func() bool {
		return testutil.ToFloat64(m.KafkaRecords.WithLabelValues("trades")) == float64(len(records))
	}, "every record consumed")
	for _, msg := range published {
		op := strings.TrimPrefix(string(msg.Wire[:strings.IndexByte(string(msg.Wire), ',')]), `{"op":`)
		got = append(got, strconv.FormatInt(msg.Offset, 10)+" "+strings.Trim(op, `"`)+" "+msg.Channel)
		if msg.Offset == 6 {
			line := `{"op":"skipped","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":6,"ts":1700000000123,"reason":"too_large","size":101}`
			if string(msg.Wire) != line {
				t.Errorf("skipped line =\n %s\nwant\n %s", msg.Wire, line)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("published %q\nwant      %q", got, want)
	}
	for reason, n := range map[string]float64{SkipInvalidChannel: 4, SkipTooLarge: 1} {
		if v := testutil.ToFloat64(m.KafkaSkipped.WithLabelValues("trades", reason)); v != n {
			t.Errorf("ws_kafka_records_skipped_total{trades,%s} = %v, want %v", reason, v, n)
		}
	}
}

// TestSkipReasonsMatchREADME: the skip reasons pre-initialised per topic are
// the README's list for ws_kafka_records_skipped_total, in order.
func TestSkipReasonsMatchREADME(t *testing.T) {
	t.Parallel()
	if doc := readme.LabelValues(t)["ws_kafka_records_skipped_total"]; !slices.Equal(doc, SkipReasons) {
		t.Fatalf("SkipReasons = %v, README lists %v", SkipReasons, doc)
	}
}
