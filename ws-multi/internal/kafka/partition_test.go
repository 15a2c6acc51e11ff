// This file is duplicated from ws-single (internal/kafka/partition_test.go) on purpose: the
// variants share the consumer and its tests.

package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

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
	hist, ring := testRing(t)
	c, err := New(cfg, failPublisher{}, hist, m, zap.NewNop())
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
	c.consume(context.Background(), newFakePartition(invalid, big), k, ring, make(chan error, 1))
	check("after the failed Publish", 1, 0, 1, 1)
	if st := ring.Stats(); st.Records != 1 || st.Next != 2 {
		t.Fatalf("ring after the failed Publish: %+v, want the big record's line only", st)
	}

	// The next session resumes at the big record and publishes its skipped line.
	pub := make(chanPublisher, 1)
	c.pub = pub
	c.consume(context.Background(), newFakePartition(big), k, ring, make(chan error, 1))
	check("after the next session", 1, 1, 2, 2)
	if st := ring.Stats(); st.Records != 1 || st.Next != 2 {
		t.Fatalf("ring after the next session: %+v, want the big record's line once", st)
	}
	if got := receive(t, pub, 1)[0]; !strings.Contains(string(got.Wire), `"op":"skipped"`) {
		t.Fatalf("published %s, want the skipped line", got.Wire)
	}
}

// testRing returns a history of "trades" and the ring of trades/0, starting at offset 0.
func testRing(t *testing.T) (*history.History, *history.Ring) {
	t.Helper()
	hist, err := history.New(testHistory, []string{"trades"})
	if err != nil {
		t.Fatal(err)
	}
	hist.Attach("trades", "", map[int32]int64{0: 0})
	return hist, hist.Ring(history.Part{Topic: "trades", Partition: 0})
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
	hist, ring := testRing(t)
	c, err := New(cfg, make(chanPublisher, 1), hist, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	p := &failingPartition{fakePartition{msgs: make(chan *sarama.ConsumerMessage), errs: make(chan *sarama.ConsumerError, 1)}}
	p.errs <- &sarama.ConsumerError{Topic: "trades", Err: sarama.ErrOffsetOutOfRange}
	ended := make(chan error, 1)
	c.consume(context.Background(), p, partitionKey{"trades", 0}, ring, ended)
	err = <-ended
	if !errors.Is(err, sarama.ErrOffsetOutOfRange) || !errors.As(err, new(countedError)) {
		t.Fatalf("session error = %v, want a counted out-of-range error", err)
	}
	if got := testutil.ToFloat64(m.KafkaErrors); got != 1 {
		t.Fatalf("ws_kafka_errors_total = %v, want 1", got)
	}
}
