package kafka

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// TestChannelHeaderRuleAndTooLarge produces records with every kind of "channel" header and
// one value over MaxRecordBytes to a kfake broker: records with a refused header reach
// nobody and are counted invalid_channel; the large one becomes its exact "skipped" line, in
// its offset order; every record counts as consumed.
func TestChannelHeaderRuleAndTooLarge(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cl := startCluster(t, port)
	defer cl.Close()

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
	kafkatest.Produce(t, []string{addr}, msgs...)

	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "ws-multi"}, metrics.Labels{})
	sink := &collector{}
	c, err := New(Config{Brokers: []string{addr}, Topics: []string{"trades"}, StartOffset: config.StartOldest, ClientID: "test",
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, MaxRecordBytes: 100},
		sink, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.KafkaSkipped); n != len(SkipReasons) {
		t.Fatalf("ws_kafka_records_skipped_total has %d series before any record, want one per reason", n)
	}
	defer runConsumer(t, c)()
	await.True(t, 15*time.Second, func() bool {
		return testutil.ToFloat64(m.KafkaRecords.WithLabelValues("trades")) == float64(len(records))
	}, "every record consumed")

	var want, got []string
	for i, r := range records {
		if r.want != "" {
			want = append(want, strconv.Itoa(i)+" "+r.want)
		}
	}
	sink.mu.Lock()
	published := slices.Clone(sink.msgs)
	sink.mu.Unlock()
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
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	row := regexp.MustCompile("(?m)^\\| `ws_kafka_records_skipped_total` \\| [a-z]+ \\|([^|]*)\\|").FindStringSubmatch(string(b))
	if row == nil {
		t.Fatal("no ws_kafka_records_skipped_total row in README")
	}
	var doc []string
	i := strings.Index(row[1], ":")
	if i < 0 {
		t.Fatalf("README row lists no values: %q", row[1])
	}
	for _, m := range regexp.MustCompile("`([a-z0-9_]+)`").FindAllStringSubmatch(row[1][i:], -1) {
		doc = append(doc, m[1])
	}
	if !slices.Equal(doc, SkipReasons) {
		t.Fatalf("SkipReasons = %v, README lists %v", SkipReasons, doc)
	}
}
