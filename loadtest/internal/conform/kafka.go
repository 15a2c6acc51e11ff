package conform

import (
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// record is one record the suite produces.
type record struct {
	key     *string   // nil: no key
	value   []byte    // nil: null value
	headers []header  // in order; a key may repeat
	ts      time.Time // zero: the producer's clock
}

// header is one record header.
type header struct{ key, value string }

// channelHeader is a `channel` record header.
func channelHeader(value string) header { return header{key: "channel", value: value} }

// produced is where a record landed.
type produced struct {
	partition int32
	offset    int64
}

// producer writes the suite's own records with sarama.
type producer struct {
	p     sarama.SyncProducer
	topic string
}

// newProducer connects a producer. maxMessageBytes raises sarama's client-side cap on one
// record (and one batch) above its default of 1000000; 0 keeps the default. Only a
// producer that sends one record at a time should raise it: a broker refuses a batch
// above its message.max.bytes (1048588 by default), and sarama fills batches up to the cap.
func newProducer(brokers []string, topic string, maxMessageBytes int) (*producer, error) {
	c := sarama.NewConfig()
	c.ClientID = "loadtest-conform"
	// 2.8 carries record headers and explicit timestamps, which the suite needs.
	c.Version = sarama.V2_8_0_0
	c.Producer.RequiredAcks = sarama.WaitForLocal
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 3
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	c.Net.WriteTimeout = 10 * time.Second
	if maxMessageBytes > c.Producer.MaxMessageBytes {
		c.Producer.MaxMessageBytes = maxMessageBytes
	}
	p, err := sarama.NewSyncProducer(brokers, c)
	if err != nil {
		return nil, fmt.Errorf("kafka producer on %v: %w", brokers, err)
	}
	return &producer{p: p, topic: topic}, nil
}

func (p *producer) message(r record) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: p.topic, Timestamp: r.ts}
	if r.key != nil {
		m.Key = sarama.StringEncoder(*r.key)
	}
	if r.value != nil {
		m.Value = sarama.ByteEncoder(r.value)
	}
	for _, h := range r.headers {
		m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.key), Value: []byte(h.value)})
	}
	return m
}

// send produces one record and returns where it landed.
func (p *producer) send(r record) (produced, error) {
	part, off, err := p.p.SendMessage(p.message(r))
	if err != nil {
		return produced{}, fmt.Errorf("produce to %s: %w", p.topic, err)
	}
	return produced{partition: part, offset: off}, nil
}

// sendBurst produces records in one call, so sarama batches them into few requests and
// the server fetches them together.
func (p *producer) sendBurst(rs []record) ([]produced, error) {
	msgs := make([]*sarama.ProducerMessage, len(rs))
	for i, r := range rs {
		msgs[i] = p.message(r)
	}
	if err := p.p.SendMessages(msgs); err != nil {
		return nil, fmt.Errorf("produce %d records to %s: %w", len(rs), p.topic, err)
	}
	out := make([]produced, len(msgs))
	for i, m := range msgs {
		out[i] = produced{partition: m.Partition, offset: m.Offset}
	}
	return out, nil
}

func (p *producer) close() error { return p.p.Close() }

func strp(s string) *string { return &s }
