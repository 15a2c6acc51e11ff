// This file is duplicated from ws-multi (internal/kafka/consumer.go) on purpose: the variants
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

	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
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
	// where it resumes when its offset is out of range (WS_KAFKA_START_OFFSET). Newest is a
	// warm start: the last history.Config.Records records of each partition are consumed
	// (into the history) before the consumer reports ready.
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
	// ReadyMaxLag is the consumer lag, in records summed over every partition, past which
	// Ready reports false (WS_READY_MAX_LAG). 0 (the default here) means no bound.
	ReadyMaxLag int
}

// Publisher receives encoded records; *hub.Hub is one. Publish must keep the order of the
// calls made by one goroutine, and may block (back-pressure) until ctx ends.
type Publisher interface {
	Publish(ctx context.Context, m *protocol.Message) error
}

// errPartitionEnded reports a partition consumer that stopped on its own.
var errPartitionEnded = errors.New("partition consumer ended")

// countedError marks a session error already counted in ws_kafka_errors_total (or not a
// failure, such as errEpochChanged), so Run does not count it (again).
type countedError struct{ error }

func (e countedError) Unwrap() error { return e.error }

// Consumer is the Kafka side of the server. Create it with New, run it with Run.
type Consumer struct {
	cfg     Config
	pub     Publisher
	hist    *history.History
	m       *metrics.Metrics
	log     *zap.Logger
	records map[string]topicCounters

	attached atomic.Bool
	// next holds, per partition, the offset after the last record handed to
	// the publisher (or the session's start offset before the first); a new
	// session resumes there. Written by the session before the partition's
	// goroutine starts, then by that goroutine; read by the lag poller and Ready.
	nextMu sync.Mutex
	next   map[partitionKey]*atomic.Int64
	// epochs are the topic ids the next offsets were taken under. Run's goroutine only.
	epochs map[string]string

	lag      atomic.Int64 // summed over partitions at the last poll (Ready)
	caughtUp atomic.Bool  // every partition reached its target once; never reset
	readyMu  sync.Mutex
	targets  map[partitionKey]int64 // high-water marks at the first attach; nil before
}

// New returns a consumer publishing to pub and keeping hist (built by main for the same
// topics). Its log is sampled (the first 5 entries per message per second, then 1 in 100):
// errors during an outage repeat.
func New(cfg Config, pub Publisher, hist *history.History, m *metrics.Metrics, log *zap.Logger) (*Consumer, error) {
	if len(cfg.Brokers) == 0 || len(cfg.Topics) == 0 {
		return nil, errors.New("kafka: brokers and topics are required")
	}
	if hist == nil {
		return nil, errors.New("kafka: a history is required")
	}
	if cfg.ReadyMaxLag < 0 {
		return nil, fmt.Errorf("kafka: ready max lag %d: want 0 (no bound) or more", cfg.ReadyMaxLag)
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
		hist:    hist,
		m:       m,
		log:     sampled(log),
		records: make(map[string]topicCounters, len(cfg.Topics)),
		next:    make(map[partitionKey]*atomic.Int64),
		epochs:  make(map[string]string, len(cfg.Topics)),
	}
	// Every topic x reason series exists from the start, at 0.
	for _, t := range cfg.Topics {
		c.records[t] = topicCounters{
			consumed:       m.KafkaRecords.WithLabelValues(t),
			tooLarge:       m.KafkaSkipped.WithLabelValues(t, SkipTooLarge),
			invalidChannel: m.KafkaSkipped.WithLabelValues(t, SkipInvalidChannel),
		}
		for _, reason := range protocol.GapReasons {
			m.LiveGaps.WithLabelValues(t, reason)
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

// baseConfig is what the live consumer and the catch-up reader share: errors returned,
// a fetch answered as soon as one byte is there (latency over throughput), and quick
// failures: the caller, not sarama, owns reconnection, so a dead broker ends a session or
// a read instead of hiding in sarama's internal retries.
func baseConfig(clientID string) *sarama.Config {
	sc := sarama.NewConfig()
	sc.ClientID = clientID
	sc.Consumer.Return.Errors = true
	sc.Consumer.Fetch.Min = 1
	sc.Consumer.Retry.Max = 3
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond
	sc.Net.DialTimeout = 5 * time.Second
	sc.Net.ReadTimeout = 10 * time.Second
	sc.Net.WriteTimeout = 5 * time.Second
	return sc
}

func (c *Consumer) saramaConfig() *sarama.Config {
	sc := baseConfig(c.cfg.ClientID)
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond // sarama warns below 100ms
	// A partition whose records wait longer than MaxProcessingTime to be taken
	// is unsubscribed from its fetch and re-added after a backoff: hundreds of
	// milliseconds of stall whenever one fan-out briefly keeps the single core
	// busy. Backpressure through the hub is intended here, so allow it.
	sc.Consumer.MaxProcessingTime = 5 * time.Second
	sc.ChannelBufferSize = 1024
	sc.Consumer.Retry.Backoff = c.cfg.RetryBackoff
	return sc
}

// sampled keeps the first 5 entries per message per second, then 1 in 100.
func sampled(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 5, 100)
	}))
}
