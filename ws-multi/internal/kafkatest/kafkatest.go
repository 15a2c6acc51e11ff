// This package is duplicated in ws-single (internal/kafkatest) on purpose; they may diverge.

// Package kafkatest holds what the integration tests share to drive a real, in-process
// Kafka-protocol broker (kfake) over loopback with a real sarama producer.
// It is imported by tests only.
package kafkatest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Topics are the topics every test cluster is seeded with, two partitions each.
var Topics = []string{"trades", "tickers"}

// NewCluster starts a kfake broker on 127.0.0.1:port (0 picks a free port) seeded with
// Topics; the caller closes it (a test that restarts the broker needs that control). A
// given port is waited for, up to 5 s, when a cluster just closed on it still holds it.
func NewCluster(t *testing.T, port int) *kfake.Cluster {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); port != 0; time.Sleep(20 * time.Millisecond) {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kfake: port %d still busy: %v", port, err)
		}
	}
	c, err := kfake.NewCluster(kfake.Ports(port), kfake.SeedTopics(2, Topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	return c
}

// Port returns the port c listens on, to start a fresh cluster in its place (NewCluster).
func Port(t *testing.T, c *kfake.Cluster) int {
	t.Helper()
	_, p, err := net.SplitHostPort(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Produce sends msgs synchronously to their set partitions.
func Produce(t *testing.T, brokers []string, msgs ...*sarama.ProducerMessage) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	// kfake's message.max.bytes: sarama then never batches past what the broker takes,
	// and a record of up to about 1 MiB still goes.
	sc.Producer.MaxMessageBytes = 1048588
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// Record is a record for Produce; an empty key is sent as no key.
func Record(topic string, partition int32, key, value string) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: topic, Partition: partition, Value: sarama.StringEncoder(value)}
	if key != "" {
		m.Key = sarama.StringEncoder(key)
	}
	return m
}
