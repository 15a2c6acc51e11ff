package conform

// The topic as the resume checks see it on the broker (its partitions, high-water marks and
// log start) and the records they produce to it.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// kafkaView reads the topic's partitions and offsets and deletes records, on the broker
// the server consumes.
type kafkaView struct {
	client sarama.Client
	admin  sarama.ClusterAdmin
	topic  string
	parts  []int32 // ascending
}

func (s *suite) openKafka() (*kafkaView, error) {
	c := sarama.NewConfig()
	c.ClientID = "loadtest-conform-admin"
	c.Version = sarama.V2_8_0_0 // DeleteRecords needs 0.11 or later
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	c.Net.WriteTimeout = 10 * time.Second
	client, err := sarama.NewClient(s.cfg.Brokers, c)
	if err != nil {
		return nil, fmt.Errorf("kafka client on %v: %w", s.cfg.Brokers, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("kafka admin on %v: %w", s.cfg.Brokers, err)
	}
	parts, err := client.Partitions(s.cfg.Topic)
	if err != nil || len(parts) == 0 {
		admin.Close()
		return nil, fmt.Errorf("partitions of %s: %v (%d)", s.cfg.Topic, err, len(parts))
	}
	slices.Sort(parts)
	return &kafkaView{client: client, admin: admin, topic: s.cfg.Topic, parts: parts}, nil
}

// close closes the admin and its client.
func (k *kafkaView) close() { _ = k.admin.Close() }

// kafkaCheck is a check that needs a view of the topic on the broker.
type kafkaCheck func(ctx context.Context, s *suite, kv *kafkaView) (string, error)

// withKafka runs a kafkaCheck with a view opened for it and closed after it.
func withKafka(run kafkaCheck) func(context.Context, *suite) (string, error) {
	return func(ctx context.Context, s *suite) (string, error) {
		kv, err := s.openKafka()
		if err != nil {
			return "", err
		}
		defer kv.close()
		return run(ctx, s, kv)
	}
}

// newest returns every partition's high-water mark (the next offset to be written).
func (k *kafkaView) newest() (map[int32]int64, error) {
	out := make(map[int32]int64, len(k.parts))
	for _, p := range k.parts {
		off, err := k.client.GetOffset(k.topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("high-water mark of %s/%d: %w", k.topic, p, err)
		}
		out[p] = off
	}
	return out, nil
}

// partitionOf is the partition a record with key lands in: the producer's hash
// partitioner (sarama's default).
func (k *kafkaView) partitionOf(key string) (int32, error) {
	return sarama.NewHashPartitioner(k.topic).Partition(&sarama.ProducerMessage{Topic: k.topic, Key: sarama.StringEncoder(key)}, int32(len(k.parts)))
}

// keyIn returns a new key of the suite (see suite.key) whose records land in a partition
// that want accepts, and that partition.
func (s *suite) keyIn(kv *kafkaView, what string, want func(part int32) bool) (string, int32, error) {
	for range 100 {
		k := s.key(what)
		p, err := kv.partitionOf(k)
		if err != nil {
			return "", 0, fmt.Errorf("partition of key %q: %w", k, err)
		}
		if want(p) {
			return k, p, nil
		}
	}
	return "", 0, fmt.Errorf("no key of 100 tried lands in the partition wanted among the %d of %s", len(kv.parts), kv.topic)
}

// anyPartition accepts every partition.
func anyPartition(int32) bool { return true }

// channelOf is the channel a record of the suite is published on.
func (s *suite) channelOf(r record) string {
	ch := ""
	for _, h := range r.headers {
		if h.key == "channel" {
			ch = h.value
		}
	}
	switch {
	case ch != "":
		return ch
	case r.key == nil || *r.key == "":
		return s.cfg.Topic
	}
	return s.channel(*r.key)
}

// sendEach produces records one at a time (each its own batch, so a Kafka lookup by time
// is exact) and notes each one's channel in want.
func (s *suite) sendEach(rs []record, want map[produced]string) ([]produced, error) {
	out := make([]produced, 0, len(rs))
	for _, r := range rs {
		p, err := s.prod.send(r)
		if err != nil {
			return nil, err
		}
		want[p] = s.channelOf(r)
		out = append(out, p)
	}
	return out, nil
}

// inSet matches the messages of the given records.
func inSet(topic string, sets ...[]produced) func(Envelope) bool {
	m := map[produced]bool{}
	for _, set := range sets {
		for _, p := range set {
			m[p] = true
		}
	}
	return func(e Envelope) bool {
		return e.Topic == topic && e.Partition != nil && e.Offset != nil && m[produced{*e.Partition, *e.Offset}]
	}
}

// numbered returns n records with key, their values numbered from first.
func numbered(key *string, first, n int, headers ...header) []record {
	rs := make([]record, n)
	for i := range rs {
		rs[i] = record{key: key, value: fmt.Appendf(nil, `{"n":%d}`, first+i), headers: headers}
	}
	return rs
}
