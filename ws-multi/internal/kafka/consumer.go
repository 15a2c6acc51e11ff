// This file is duplicated from ws-single (internal/kafka/consumer.go) on purpose: the variants
// share the consumer; it hands records to hub.Publish in both.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Reasons a Kafka record is not delivered (label "reason" of
// ws_kafka_records_skipped_total). SkipTooLarge is also the "reason" of the
// skipped line its subscribers get.
const (
	SkipTooLarge       = "too_large"
	SkipInvalidChannel = "invalid_channel"
)

// SkipReasons are every skip reason; New pre-initialises them per topic.
// Read-only.
var SkipReasons = []string{SkipTooLarge, SkipInvalidChannel}

// Config is what the consumer needs from the server config (config.Config).
type Config struct {
	Brokers []string // bootstrap brokers, host:port (WS_KAFKA_BROKERS)
	Topics  []string // topics, every partition consumed (WS_KAFKA_TOPICS)
	// StartOffset is config.StartNewest or config.StartOldest: where a partition starts, and
	// where it resumes when its offset is out of range (WS_KAFKA_START_OFFSET).
	StartOffset string
	ClientID    string // Kafka client id
	// RetryBackoff is the first delay before a new session; it doubles per failed session up
	// to RetryBackoffMax (WS_KAFKA_RETRY_BACKOFF, WS_KAFKA_RETRY_BACKOFF_MAX).
	RetryBackoff, RetryBackoffMax time.Duration
	// LagInterval is how often high-water marks are polled (lag and liveness). Default 2s.
	LagInterval time.Duration
	// MaxRecordBytes is the longest record value delivered (WS_MAX_RECORD_BYTES); a longer
	// record's subscribers get a "skipped" line instead.
	MaxRecordBytes int
}

// Publisher receives encoded records; *hub.Hub is one. Publish must keep the order of the
// calls made by one goroutine, and may block (back-pressure) until ctx ends.
type Publisher interface {
	Publish(ctx context.Context, m *protocol.Message) error
}

// errPartitionEnded reports a partition consumer that stopped on its own.
var errPartitionEnded = errors.New("partition consumer ended")

// countedError marks a session error already counted in ws_kafka_errors_total, so Run does
// not count it twice.
type countedError struct{ error }

func (e countedError) Unwrap() error { return e.error }

// Consumer is the Kafka side of the server. Create it with New, run it with Run.
type Consumer struct {
	cfg     Config
	pub     Publisher
	m       *metrics.Metrics
	log     *zap.Logger
	records map[string]topicCounters

	attached atomic.Bool
	// next holds, per partition, the offset after the last record handed to
	// the publisher; a new session resumes there. Written by the partition's
	// goroutine, read by the session and the lag poller.
	nextMu sync.Mutex
	next   map[partitionKey]*atomic.Int64
}

// New returns a consumer publishing to pub. Its log is sampled (the first 5
// entries per message per second, then 1 in 100): errors during an outage repeat.
func New(cfg Config, pub Publisher, m *metrics.Metrics, log *zap.Logger) (*Consumer, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Topics) == 0 {
		return nil, errors.New("kafka: brokers and topics are required")
	}
	if cfg.StartOffset != config.StartNewest && cfg.StartOffset != config.StartOldest {
		return nil, fmt.Errorf("kafka: start offset %q: want %q or %q", cfg.StartOffset, config.StartNewest, config.StartOldest)
	}
	if cfg.RetryBackoff <= 0 || cfg.RetryBackoffMax < cfg.RetryBackoff {
		return nil, fmt.Errorf("kafka: retry backoff %s..%s: want 0 < backoff <= max", cfg.RetryBackoff, cfg.RetryBackoffMax)
	}
	if cfg.MaxRecordBytes < 1 {
		return nil, fmt.Errorf("kafka: max record bytes %d: want positive", cfg.MaxRecordBytes)
	}
	if cfg.LagInterval <= 0 {
		cfg.LagInterval = 2 * time.Second
	}
	c := &Consumer{
		cfg:     cfg,
		pub:     pub,
		m:       m,
		log:     sampled(log),
		records: make(map[string]topicCounters, len(cfg.Topics)),
		next:    make(map[partitionKey]*atomic.Int64),
	}
	// Every topic x reason series exists from the start, at 0.
	for _, t := range cfg.Topics {
		c.records[t] = topicCounters{
			consumed:       m.KafkaRecords.WithLabelValues(t),
			tooLarge:       m.KafkaSkipped.WithLabelValues(t, SkipTooLarge),
			invalidChannel: m.KafkaSkipped.WithLabelValues(t, SkipInvalidChannel),
		}
	}
	return c, nil
}

// Attached reports whether every partition is being consumed.
func (c *Consumer) Attached() bool { return c.attached.Load() }

func (c *Consumer) setAttached(v bool) {
	c.attached.Store(v)
	if v {
		c.m.KafkaAttached.Set(1)
	} else {
		c.m.KafkaAttached.Set(0)
	}
}

// Run consumes until ctx ends, reconnecting after every failure with exponential backoff
// (RetryBackoff doubling up to RetryBackoffMax, reset after a session that attached). It
// returns nil when ctx ends: failures are counted once in ws_kafka_errors_total, logged and
// retried, never fatal, so WebSocket clients stay connected through a broker outage.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := c.cfg.RetryBackoff
	for {
		wasAttached, err := c.session(ctx)
		c.setAttached(false)
		if ctx.Err() != nil {
			return nil
		}
		if wasAttached {
			backoff = c.cfg.RetryBackoff // a working session resets the backoff
		}
		if !errors.As(err, new(countedError)) {
			c.m.KafkaErrors.Inc()
		}
		c.log.Warn("kafka session ended; reconnecting", zap.Error(err), zap.Duration("backoff", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
	}
}

func (c *Consumer) saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = c.cfg.ClientID
	sc.Consumer.Return.Errors = true
	// Latency over throughput: a fetch returns as soon as one byte is there.
	sc.Consumer.Fetch.Min = 1
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond // sarama warns below 100ms
	// A partition whose records wait longer than MaxProcessingTime to be taken
	// is unsubscribed from its fetch and re-added after a backoff: hundreds of
	// milliseconds of stall whenever one fan-out briefly keeps the single core
	// busy. Backpressure through the hub is intended here, so allow it.
	sc.Consumer.MaxProcessingTime = 5 * time.Second
	sc.ChannelBufferSize = 1024
	sc.Consumer.Retry.Backoff = c.cfg.RetryBackoff
	// Sessions, not sarama, own reconnection; fail fast so a dead broker ends
	// the session instead of hiding in sarama's internal retries.
	sc.Consumer.Retry.Max = 3
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond
	sc.Net.DialTimeout = 5 * time.Second
	sc.Net.ReadTimeout = 10 * time.Second
	sc.Net.WriteTimeout = 5 * time.Second
	return sc
}

func (c *Consumer) policy() int64 {
	if c.cfg.StartOffset == config.StartOldest {
		return sarama.OffsetOldest
	}
	return sarama.OffsetNewest
}

// session runs one sarama client until it fails or ctx ends. It reports
// whether it got every partition consuming.
func (c *Consumer) session(ctx context.Context) (attached bool, err error) {
	client, err := sarama.NewClient(c.cfg.Brokers, c.saramaConfig())
	if err != nil {
		return false, fmt.Errorf("kafka: connect %v: %w", c.cfg.Brokers, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return false, fmt.Errorf("kafka: consumer: %w", err)
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan error, 1) // first partition failure; later ones are dropped
	var wg sync.WaitGroup
	defer wg.Wait() // before client.Close (deferred earlier, runs later)
	defer cancel()

	var parts []partitionKey
	for _, topic := range c.cfg.Topics {
		ids, err := client.Partitions(topic)
		if err != nil {
			return false, fmt.Errorf("kafka: partitions of %s: %w", topic, err)
		}
		for _, p := range ids {
			k := partitionKey{topic, p}
			pc, err := c.consumePartition(consumer, k)
			if err != nil {
				return false, err
			}
			parts = append(parts, k)
			wg.Go(func() { c.consume(sctx, pc, k, ended) })
		}
	}

	ticker := time.NewTicker(c.cfg.LagInterval)
	defer ticker.Stop()
	if err := c.pollLag(client, parts); err != nil {
		return false, err
	}
	c.setAttached(true)
	c.log.Info("kafka attached", zap.Strings("topics", c.cfg.Topics), zap.Int("partitions", len(parts)))
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-ended:
			return true, err
		case <-ticker.C:
			if err := c.pollLag(client, parts); err != nil {
				return true, err
			}
		}
	}
}

// sampled keeps the first 5 entries per message per second, then 1 in 100.
func sampled(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 5, 100)
	}))
}
