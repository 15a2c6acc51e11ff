package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Publisher receives encoded records. Publish must keep the order of the calls made by one
// goroutine, and may block (back-pressure) until ctx ends.
type Publisher interface {
	Publish(ctx context.Context, m *protocol.Message) error
}

// Reasons a Kafka record is not delivered (label "reason" of
// ws_kafka_records_skipped_total). SkipTooLarge is also the "reason" of the skipped line
// its subscribers get.
const (
	SkipTooLarge       = "too_large"
	SkipInvalidChannel = "invalid_channel"
)

// SkipReasons are every skip reason; New pre-initialises them per topic.
var SkipReasons = []string{SkipTooLarge, SkipInvalidChannel}

// Config configures the consumer; the server fills it from config.Config.
type Config struct {
	Brokers []string // bootstrap brokers (WS_KAFKA_BROKERS)
	Topics  []string // topics, every partition consumed (WS_KAFKA_TOPICS)
	// StartOffset is config.StartNewest or config.StartOldest: where a partition starts, and
	// where it resumes when its offset is out of range (WS_KAFKA_START_OFFSET).
	StartOffset     string
	ClientID        string        // Kafka client id
	RetryBackoff    time.Duration // first reconnect delay, doubled per failure (default 500ms)
	RetryBackoffMax time.Duration // longest reconnect delay (default 10s)
	LagInterval     time.Duration // high-water mark poll period for ws_kafka_consumer_lag (2s when 0)
	// MaxRecordBytes is the largest record value delivered (WS_MAX_RECORD_BYTES, default
	// 1 MiB); a larger record's subscribers get a "skipped" notice in its place.
	MaxRecordBytes int
}

// countedError marks a session error already counted in ws_kafka_errors_total, so Run does
// not count it twice.
type countedError struct{ error }

func (e countedError) Unwrap() error { return e.error }

// Consumer is a broadcast consumer of every partition of Config.Topics.
type Consumer struct {
	cfg      Config
	sink     Publisher
	metrics  *metrics.Metrics
	log      *zap.Logger
	attached atomic.Bool
	// parts survives sessions: it remembers each partition's next offset so a reconnect
	// resumes where the last record was handed to the hub. Only Run's goroutine adds to it.
	parts map[topicPartition]*partition
}

type topicPartition struct {
	topic     string
	partition int32
}

type partition struct {
	tp             topicPartition
	next           atomic.Int64 // next offset to consume; -1 until the first record
	records        prometheus.Counter
	tooLarge       prometheus.Counter // ws_kafka_records_skipped_total{reason="too_large"}
	invalidChannel prometheus.Counter // ws_kafka_records_skipped_total{reason="invalid_channel"}
	lag            prometheus.Gauge
}

// New builds a consumer; Run consumes.
func New(cfg Config, sink Publisher, m *metrics.Metrics, log *zap.Logger) (*Consumer, error) {
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
	for _, t := range cfg.Topics {
		for _, r := range SkipReasons {
			m.KafkaSkipped.WithLabelValues(t, r)
		}
	}
	return &Consumer{cfg: cfg, sink: sink, metrics: m, log: log, parts: make(map[topicPartition]*partition)}, nil
}

// Attached reports whether every partition is being consumed right now.
func (c *Consumer) Attached() bool { return c.attached.Load() }

func (c *Consumer) setAttached(v bool) {
	c.attached.Store(v)
	if v {
		c.metrics.KafkaAttached.Set(1)
	} else {
		c.metrics.KafkaAttached.Set(0)
	}
}

// Run consumes until ctx ends, reconnecting after every failure with exponential backoff
// (RetryBackoff doubling up to RetryBackoffMax, reset after a session that attached). It
// returns nil when ctx ends: failures are counted, logged and retried, never fatal, so
// WebSocket clients stay connected through a broker outage.
func (c *Consumer) Run(ctx context.Context) error {
	backoff := c.cfg.RetryBackoff
	for {
		attached, err := c.session(ctx)
		c.setAttached(false)
		if ctx.Err() != nil {
			return nil
		}
		if !errors.As(err, new(countedError)) {
			c.metrics.KafkaErrors.Inc()
		}
		if attached {
			backoff = c.cfg.RetryBackoff
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
	// Latency over throughput: the broker answers a fetch as soon as one byte is there, and
	// an idle fetch returns after 100ms so a new record never waits for a long poll.
	sc.Consumer.Fetch.Min = 1
	sc.Consumer.MaxWaitTime = 100 * time.Millisecond // sarama warns below 100ms
	// A partition whose records wait longer than MaxProcessingTime to be taken is dropped
	// from its fetch and re-added after a backoff: a stall of hundreds of milliseconds each
	// time the hub pushes back for a moment. Back-pressure through the hub is intended, so
	// allow it; 1024 buffered records per partition absorb a fan-out burst.
	sc.Consumer.MaxProcessingTime = 5 * time.Second
	sc.ChannelBufferSize = 1024
	sc.Consumer.Retry.Backoff = c.cfg.RetryBackoff
	// Our own loop owns reconnecting (with backoff and a fresh client); sarama's inner
	// retries only delay noticing an outage.
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 100 * time.Millisecond
	sc.Net.DialTimeout = 3 * time.Second
	sc.Net.ReadTimeout = 10 * time.Second
	sc.Net.WriteTimeout = 10 * time.Second
	return sc
}

func (c *Consumer) startOffset() int64 {
	if c.cfg.StartOffset == config.StartOldest {
		return sarama.OffsetOldest
	}
	return sarama.OffsetNewest
}

// session connects, consumes every partition until the first error or until ctx ends, and
// tears everything down. attached tells whether every partition was consumed at some point.
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
	defer consumer.Close()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var failOnce sync.Once
	var firstErr error
	// fail ends the session; its callers counted the error in ws_kafka_errors_total already.
	fail := func(err error) {
		failOnce.Do(func() { firstErr = countedError{err} })
		cancel()
	}

	var wg sync.WaitGroup
	var pcs []sarama.PartitionConsumer
	defer func() {
		// Closing a partition consumer ends its goroutine once sarama closed both channels.
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		wg.Wait()
	}()
	for _, topic := range c.cfg.Topics {
		ids, err := client.Partitions(topic)
		if err != nil {
			return false, fmt.Errorf("kafka: partitions of %s: %w", topic, err)
		}
		for _, id := range ids {
			p := c.partition(topic, id)
			pc, err := c.consumePartition(consumer, p)
			if err != nil {
				return false, err
			}
			pcs = append(pcs, pc)
			wg.Go(func() { c.consume(sctx, pc, p, fail) })
		}
	}
	c.setAttached(true)
	c.log.Info("kafka attached", zap.Strings("topics", c.cfg.Topics), zap.Int("partitions", len(pcs)))
	wg.Go(func() { c.pollLag(sctx, client, fail) })

	<-sctx.Done()
	if ctx.Err() != nil {
		return true, nil
	}
	return true, firstErr
}

func (c *Consumer) partition(topic string, id int32) *partition {
	tp := topicPartition{topic, id}
	p := c.parts[tp]
	if p == nil {
		p = &partition{
			tp:             tp,
			records:        c.metrics.KafkaRecords.WithLabelValues(topic),
			tooLarge:       c.metrics.KafkaSkipped.WithLabelValues(topic, SkipTooLarge),
			invalidChannel: c.metrics.KafkaSkipped.WithLabelValues(topic, SkipInvalidChannel),
			lag:            c.metrics.KafkaLag.WithLabelValues(topic, strconv.Itoa(int(id))),
		}
		p.next.Store(-1)
		c.parts[tp] = p
	}
	return p
}

// consumePartition resumes a partition at its next offset, or starts it at the configured
// policy. A resume offset the broker no longer has (retention, or a broker reset that
// restarted the log) falls back to the policy.
func (c *Consumer) consumePartition(consumer sarama.Consumer, p *partition) (sarama.PartitionConsumer, error) {
	offset := p.next.Load()
	if offset < 0 {
		offset = c.startOffset()
	}
	pc, err := consumer.ConsumePartition(p.tp.topic, p.tp.partition, offset)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) && offset >= 0 {
		c.metrics.KafkaErrors.Inc()
		c.log.Warn("kafka resume offset out of range; restarting at the start policy",
			zap.String("topic", p.tp.topic), zap.Int32("partition", p.tp.partition),
			zap.Int64("offset", offset), zap.String("start_offset", c.cfg.StartOffset))
		pc, err = consumer.ConsumePartition(p.tp.topic, p.tp.partition, c.startOffset())
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: consume %s/%d at %d: %w", p.tp.topic, p.tp.partition, offset, err)
	}
	return pc, nil
}

// consume hands a partition's records to the hub in offset order, until sarama closes the
// partition consumer: each as its message, a "skipped" notice in its place, or nothing
// (see message). After the session ended it only drains: records not handed over are
// consumed again by the next session, from p.next, and counted then.
func (c *Consumer) consume(ctx context.Context, pc sarama.PartitionConsumer, p *partition, fail func(error)) {
	msgs, errs := pc.Messages(), pc.Errors()
	for msgs != nil || errs != nil {
		select {
		case rec, ok := <-msgs:
			if !ok {
				msgs = nil
				continue
			}
			if ctx.Err() != nil {
				continue
			}
			m, skipped := c.message(p, rec)
			if m != nil {
				if err := c.sink.Publish(ctx, m); err != nil {
					continue // session ending; this record is consumed again next session
				}
			}
			p.next.Store(rec.Offset + 1)
			p.records.Inc()
			if skipped != nil {
				skipped.Inc()
			}
		case cerr, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			c.metrics.KafkaErrors.Inc()
			fail(fmt.Errorf("kafka: consume %s/%d: %w", p.tp.topic, p.tp.partition, cerr.Err))
		}
	}
}

// pollLag sets ws_kafka_consumer_lag from the high-water marks every LagInterval. A failed
// poll means the broker is unreachable: it ends the session, which is how an outage is
// noticed even when no partition is fetching.
func (c *Consumer) pollLag(ctx context.Context, client sarama.Client, fail func(error)) {
	t := time.NewTicker(c.cfg.LagInterval)
	defer t.Stop()
	for {
		for _, p := range c.parts {
			hwm, err := client.GetOffset(p.tp.topic, p.tp.partition, sarama.OffsetNewest)
			if err != nil {
				if ctx.Err() == nil {
					c.metrics.KafkaErrors.Inc()
					fail(fmt.Errorf("kafka: high-water mark of %s/%d: %w", p.tp.topic, p.tp.partition, err))
				}
				return
			}
			if next := p.next.Load(); next >= 0 {
				p.lag.Set(float64(max(hwm-next, 0)))
			} else {
				p.lag.Set(0)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
