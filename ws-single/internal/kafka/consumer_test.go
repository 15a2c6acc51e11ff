// This file is duplicated from ws-multi (internal/kafka/consumer_test.go) on purpose: the
// variants share the consumer and its tests.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gometrics "github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

func TestMain(m *testing.M) {
	// As in main: sarama's go-metrics registry would start a meter goroutine
	// that never ends (and costs CPU in production).
	gometrics.UseNilMetrics = true
	goleak.VerifyTestMain(m)
}

// chanPublisher hands published messages to the test.
type chanPublisher chan *protocol.Message

func (p chanPublisher) Publish(ctx context.Context, m *protocol.Message) error {
	select {
	case p <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func port(t *testing.T, c *kfake.Cluster) int {
	t.Helper()
	_, p, err := net.SplitHostPort(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func receive(t *testing.T, pub chanPublisher, n int) []*protocol.Message {
	t.Helper()
	var got []*protocol.Message
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case m := <-pub:
			got = append(got, m)
		case <-timeout:
			t.Fatalf("received %d records, want %d", len(got), n)
		}
	}
	return got
}

type running struct {
	c      *Consumer
	m      *metrics.Metrics
	pub    chanPublisher
	cancel context.CancelFunc
	done   chan error
}

func startConsumer(t *testing.T, brokers []string, start string, opts ...func(*Config)) *running {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	pub := make(chanPublisher, 100)
	cfg := Config{
		Brokers: brokers, Topics: []string{"trades", "tickers"}, StartOffset: start, ClientID: "test",
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, LagInterval: 100 * time.Millisecond,
		MaxRecordBytes: 1 << 20,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg, pub, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, m: m, pub: pub, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	<-r.done
}

func TestConsumesEveryPartitionFromNewest(t *testing.T) {
	cluster := kafkatest.NewCluster(t, 0)
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	kafkatest.Produce(t, brokers, kafkatest.Record("trades", 0, "OLD", `1`)) // before start: skipped by "newest"

	r := startConsumer(t, brokers, config.StartNewest)
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

func TestSurvivesBrokerRestart(t *testing.T) {
	cluster := kafkatest.NewCluster(t, 0)
	p := port(t, cluster)
	brokers := cluster.ListenAddrs()
	r := startConsumer(t, brokers, config.StartNewest)
	await.True(t, 20*time.Second, r.c.Attached, "attached")
	for i := range 3 {
		kafkatest.Produce(t, brokers, kafkatest.Record("trades", 0, "K", fmt.Sprint(i)))
	}
	receive(t, r.pub, 3)

	cluster.Close()
	await.True(t, 20*time.Second, func() bool { return !r.c.Attached() }, "detached during the outage")
	if got := testutil.ToFloat64(r.m.KafkaAttached); got != 0 {
		t.Fatalf("ws_kafka_attached = %v during the outage", got)
	}

	// A fresh broker on the same port: its partitions start at offset 0, below
	// where the consumer stopped, so the resume offset is out of range.
	cluster = startCluster(t, p)
	defer cluster.Close()
	await.True(t, 20*time.Second, r.c.Attached, "attached again")
	kafkatest.Produce(t, brokers, kafkatest.Record("trades", 0, "K", `"after"`))
	got := receive(t, r.pub, 1)
	if !strings.Contains(string(got[0].Wire), `"offset":0,`) || !strings.Contains(string(got[0].Wire), `"data":"after"`) {
		t.Fatalf("after restart got %s", got[0].Wire)
	}
	if testutil.ToFloat64(r.m.KafkaErrors) == 0 {
		t.Fatal("ws_kafka_errors_total = 0 after an outage")
	}
	r.stop()
}

// fakePartition is a partition consumer holding the given records; it ends
// (its Messages channel is closed) after them.
type fakePartition struct {
	sarama.PartitionConsumer // the methods consume does not use
	msgs                     chan *sarama.ConsumerMessage
	errs                     chan *sarama.ConsumerError
}

func newFakePartition(msgs ...*sarama.ConsumerMessage) *fakePartition {
	p := &fakePartition{msgs: make(chan *sarama.ConsumerMessage, len(msgs)), errs: make(chan *sarama.ConsumerError)}
	for _, m := range msgs {
		p.msgs <- m
	}
	close(p.msgs)
	return p
}

func (p *fakePartition) Messages() <-chan *sarama.ConsumerMessage { return p.msgs }
func (p *fakePartition) Errors() <-chan *sarama.ConsumerError     { return p.errs }
func (p *fakePartition) AsyncClose()                              { close(p.errs) }

// failPublisher fails every Publish, as when the session ends during one.
type failPublisher struct{}

func (failPublisher) Publish(context.Context, *protocol.Message) error { return context.Canceled }

// TestSkipsCountOncePerRecord: a record is counted (consumed and skipped) once
// the resume offset is past it; one whose Publish fails when its session ends
// is consumed again by the next session and still counts once.
func TestSkipsCountOncePerRecord(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"trades"}, StartOffset: config.StartNewest,
		RetryBackoff: time.Second, RetryBackoffMax: time.Second, MaxRecordBytes: 10}
	c, err := New(cfg, failPublisher{}, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	k := partitionKey{"trades", 0}
	record := func(offset int64, value string, channels ...string) *sarama.ConsumerMessage {
		msg := &sarama.ConsumerMessage{Topic: "trades", Partition: 0, Offset: offset, Key: []byte("K"), Value: []byte(value)}
		for _, ch := range channels {
			msg.Headers = append(msg.Headers, &sarama.RecordHeader{Key: []byte("channel"), Value: []byte(ch)})
		}
		return msg
	}
	invalid := record(0, `1`, "tickers:X")
	big := record(1, strings.Repeat("x", 11))
	count := func(reason string) float64 {
		return testutil.ToFloat64(m.KafkaSkipped.WithLabelValues("trades", reason))
	}
	check := func(when string, invalidCh, tooLarge, consumed float64, next int64) {
		t.Helper()
		if got := count(SkipInvalidChannel); got != invalidCh {
			t.Errorf("%s: skipped{invalid_channel} = %v, want %v", when, got, invalidCh)
		}
		if got := count(SkipTooLarge); got != tooLarge {
			t.Errorf("%s: skipped{too_large} = %v, want %v", when, got, tooLarge)
		}
		if got := testutil.ToFloat64(m.KafkaRecords.WithLabelValues("trades")); got != consumed {
			t.Errorf("%s: consumed = %v, want %v", when, got, consumed)
		}
		if got := c.nextOffset(k).Load(); got != next {
			t.Errorf("%s: next offset = %d, want %d", when, got, next)
		}
	}

	// First session: the invalid record is done with; the big one's Publish
	// fails as the session ends.
	c.consume(context.Background(), newFakePartition(invalid, big), k, make(chan error, 1))
	check("after the failed Publish", 1, 0, 1, 1)

	// The next session resumes at the big record and publishes its skipped line.
	pub := make(chanPublisher, 1)
	c.pub = pub
	c.consume(context.Background(), newFakePartition(big), k, make(chan error, 1))
	check("after the next session", 1, 1, 2, 2)
	if got := receive(t, pub, 1)[0]; !strings.Contains(string(got.Wire), `"op":"skipped"`) {
		t.Fatalf("published %s, want the skipped line", got.Wire)
	}
}

// failingPartition is a partition consumer that has sent an error and no records; closing it
// closes both channels.
type failingPartition struct{ fakePartition }

func (p *failingPartition) AsyncClose() { close(p.msgs); close(p.errs) }

// TestOutOfRangeCountsOnce: a partition consumer's out-of-range error ends the session and
// counts once in ws_kafka_errors_total, not again when Run sees the session end.
func TestOutOfRangeCountsOnce(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	cfg := Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"trades"}, StartOffset: config.StartNewest,
		RetryBackoff: time.Second, RetryBackoffMax: time.Second, MaxRecordBytes: 10}
	c, err := New(cfg, make(chanPublisher, 1), m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	p := &failingPartition{fakePartition{msgs: make(chan *sarama.ConsumerMessage), errs: make(chan *sarama.ConsumerError, 1)}}
	p.errs <- &sarama.ConsumerError{Topic: "trades", Err: sarama.ErrOffsetOutOfRange}
	ended := make(chan error, 1)
	c.consume(context.Background(), p, partitionKey{"trades", 0}, ended)
	err = <-ended
	if !errors.Is(err, sarama.ErrOffsetOutOfRange) || !errors.As(err, new(countedError)) {
		t.Fatalf("session error = %v, want a counted out-of-range error", err)
	}
	if got := testutil.ToFloat64(m.KafkaErrors); got != 1 {
		t.Fatalf("ws_kafka_errors_total = %v, want 1", got)
	}
}

// collector is a Publisher that records what it receives.
type collector struct {
	mu   sync.Mutex
	msgs []*protocol.Message
}

func (c *collector) Publish(_ context.Context, m *protocol.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	return nil
}

func (c *collector) offsets(partition int32) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int64
	for _, m := range c.msgs {
		if m.Partition == partition {
			out = append(out, m.Offset)
		}
	}
	return out
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// startCluster starts a kafkatest cluster on port, once the port is free again (a cluster
// just closed can hold it a moment).
func startCluster(t *testing.T, port int) *kfake.Cluster {
	t.Helper()
	await.True(t, 5*time.Second, func() bool {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
		}
		return err == nil
	}, "port free")
	return kafkatest.NewCluster(t, port)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// produce sends n records to partition of "trades", the first with a channel header.
func produce(t *testing.T, addr string, partition int32, n int) {
	t.Helper()
	var msgs []*sarama.ProducerMessage
	for i := range n {
		msg := kafkatest.Record("trades", partition, "BTC-USD", fmt.Sprintf(`{"i":%d}`, i))
		if i == 0 {
			msg.Headers = []sarama.RecordHeader{{Key: []byte("channel"), Value: []byte("trades:special")}}
		}
		msgs = append(msgs, msg)
	}
	kafkatest.Produce(t, []string{addr}, msgs...)
}

func TestConsumeOutageAndResume(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cl := startCluster(t, port)
	defer func() { cl.Close() }()
	produce(t, addr, 0, 3) // before the consumer starts: read because StartOldest

	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	sink := &collector{}
	c, err := New(Config{Brokers: []string{addr}, Topics: []string{"trades"}, StartOffset: config.StartOldest, ClientID: "test",
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, LagInterval: 100 * time.Millisecond,
		MaxRecordBytes: 1 << 20},
		sink, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer runConsumer(t, c)()

	await.True(t, 15*time.Second, c.Attached, "attached")
	produce(t, addr, 1, 2)
	await.True(t, 15*time.Second, func() bool { return sink.count() == 5 }, "5 records")
	if got := sink.offsets(0); fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("partition 0 offsets = %v", got)
	}
	if got := sink.offsets(1); fmt.Sprint(got) != "[0 1]" {
		t.Errorf("partition 1 offsets = %v", got)
	}
	sink.mu.Lock()
	first := string(sink.msgs[0].Wire)
	sink.mu.Unlock()
	if want := `"channel":"trades:special"`; !strings.Contains(first, want) {
		t.Errorf("header channel not used: %s", first)
	}
	if got := testutil.ToFloat64(m.KafkaRecords.WithLabelValues("trades")); got != 5 {
		t.Errorf("records consumed = %v", got)
	}
	if got := testutil.ToFloat64(m.KafkaAttached); got != 1 {
		t.Errorf("ws_kafka_attached = %v", got)
	}
	// Lag: the high-water mark minus the next offset, polled every LagInterval; a series per
	// partition, 0 once caught up.
	await.True(t, 15*time.Second, func() bool {
		return testutil.ToFloat64(m.KafkaLag.WithLabelValues("trades", "0")) == 0 &&
			testutil.CollectAndCount(m.KafkaLag) == 2
	}, "lag 0 when caught up")

	// Outage: the broker goes away; the consumer notices and detaches.
	cl.Close()
	await.True(t, 15*time.Second, func() bool { return !c.Attached() }, "detached")
	if got := testutil.ToFloat64(m.KafkaErrors); got < 1 {
		t.Errorf("ws_kafka_errors_total = %v during an outage", got)
	}
	// The broker comes back empty on the same port: the saved offsets (3 and 2) are out of
	// range, so consumption restarts at the policy (oldest) and picks up new records.
	cl = startCluster(t, port)
	await.True(t, 15*time.Second, c.Attached, "re-attached")
	produce(t, addr, 0, 1)
	await.True(t, 15*time.Second, func() bool { return sink.count() == 6 }, "record after restart")
	if got := sink.offsets(0); fmt.Sprint(got) != "[0 1 2 0]" {
		t.Errorf("partition 0 offsets after restart = %v", got)
	}
}

// runConsumer runs c until the returned stop is called; stop waits for Run and
// fails the test if it returned an error.
func runConsumer(t *testing.T, c *Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}
