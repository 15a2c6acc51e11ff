package dev

import (
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig describes the in-process Kafka-protocol broker.
type BrokerConfig struct {
	// Addr is the TCP listen address, e.g. "127.0.0.1:9092"; port 0 picks a free port.
	// Required.
	Addr string
	// Topics are created at start. Clients may create others by producing to them.
	Topics []string
	// Partitions is the partition count of every topic, seeded or auto-created. Default 4.
	Partitions int
}

// Broker is a single-node Kafka-protocol broker (kfake) running in this process.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// NewBroker starts a broker listening on cfg.Addr. Close stops it.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Addr == "" {
		return nil, errors.New("dev: broker address is empty")
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	if cfg.Partitions < 0 {
		return nil, fmt.Errorf("dev: partitions %d: must be positive", cfg.Partitions)
	}
	opts := []kfake.Opt{
		// One node: its address is the only one clients learn from metadata, so a
		// bootstrap address on loopback is all they ever need.
		kfake.NumBrokers(1),
		// kfake always listens on 127.0.0.1:<port>; listening on the exact address asked
		// for lets --broker name another interface or a fixed port.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, cfg.Addr)
		}),
		// Outside clients (kcat, the load generator) may produce to topics we did not
		// seed; they get the same partition count.
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("dev: start broker on %s: %w", cfg.Addr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("dev: broker listens on %d addresses, want 1", len(addrs))
	}
	return &Broker{cluster: c, addr: addrs[0]}, nil
}

// Addr is the host:port the broker listens on (the real port when 0 was asked for).
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and drops every connection. Data is not kept.
func (b *Broker) Close() { b.cluster.Close() }
