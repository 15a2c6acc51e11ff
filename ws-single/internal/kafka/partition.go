// This file is duplicated from ws-multi (internal/kafka/partition.go) on purpose: the variants
// share the consumer; it hands records to hub.Publish in both.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/IBM/sarama"
	"go.uber.org/zap"
)

// A session's partitions: where each resumes, how its records reach the hub, and the lag
// poll that is also the session's liveness check.

type partitionKey struct {
	topic     string
	partition int32
}

func (c *Consumer) nextOffset(k partitionKey) *atomic.Int64 {
	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	v := c.next[k]
	if v == nil {
		v = new(atomic.Int64)
		v.Store(-1) // unknown: use the start policy
		c.next[k] = v
	}
	return v
}

// consumePartition starts k where the last session left it, or at the start
// policy when that is unknown or no longer exists.
func (c *Consumer) consumePartition(consumer sarama.Consumer, k partitionKey) (sarama.PartitionConsumer, error) {
	offset := c.nextOffset(k).Load()
	if offset >= 0 {
		pc, err := consumer.ConsumePartition(k.topic, k.partition, offset)
		if err == nil {
			return pc, nil
		}
		if !errors.Is(err, sarama.ErrOffsetOutOfRange) {
			return nil, fmt.Errorf("kafka: consume %s/%d at %d: %w", k.topic, k.partition, offset, err)
		}
		c.m.KafkaErrors.Inc()
		c.log.Warn("kafka offset out of range; resuming at start policy",
			zap.String("topic", k.topic), zap.Int32("partition", k.partition),
			zap.Int64("offset", offset), zap.String("policy", c.cfg.StartOffset))
	}
	pc, err := consumer.ConsumePartition(k.topic, k.partition, c.policy())
	if err != nil {
		return nil, fmt.Errorf("kafka: consume %s/%d from %s: %w", k.topic, k.partition, c.cfg.StartOffset, err)
	}
	return pc, nil
}

// consume hands k's records to the publisher until ctx ends or the partition
// consumer fails, then closes the partition consumer and drains it.
func (c *Consumer) consume(ctx context.Context, pc sarama.PartitionConsumer, k partitionKey, ended chan<- error) {
	defer drain(pc)
	next := c.nextOffset(k)
	counters := c.records[k.topic]
	fail := func(err error) {
		select {
		case ended <- err:
		default:
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-pc.Messages():
			if !ok {
				fail(fmt.Errorf("kafka: %s/%d: %w", k.topic, k.partition, errPartitionEnded))
				return
			}
			m, skipped := c.encode(msg, counters)
			if m != nil {
				if err := c.pub.Publish(ctx, m); err != nil {
					return // ctx ended or the hub stopped: next stays at this record
				}
			}
			// The record is done with: a new session resumes after it, so it
			// is counted here once (a record whose Publish failed above is
			// consumed again and counted then).
			next.Store(msg.Offset + 1)
			counters.consumed.Inc()
			if skipped != nil {
				skipped.Inc()
			}
		case cerr, ok := <-pc.Errors():
			if !ok {
				fail(fmt.Errorf("kafka: %s/%d: %w", k.topic, k.partition, errPartitionEnded))
				return
			}
			c.m.KafkaErrors.Inc()
			c.log.Warn("kafka consumer error", zap.String("topic", k.topic),
				zap.Int32("partition", k.partition), zap.Error(cerr.Err))
			if errors.Is(cerr.Err, sarama.ErrOffsetOutOfRange) {
				fail(countedError{fmt.Errorf("kafka: %s/%d: %w", k.topic, k.partition, cerr.Err)})
				return
			}
		}
	}
}

// drain closes pc and reads it empty so sarama's goroutines can end.
func drain(pc sarama.PartitionConsumer) {
	pc.AsyncClose()
	msgs, errs := pc.Messages(), pc.Errors()
	for msgs != nil || errs != nil {
		select {
		case _, ok := <-msgs:
			if !ok {
				msgs = nil
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil
			}
		}
	}
}

// pollLag reads every partition's high-water mark, sets the lag gauges, and
// fails when the broker cannot answer: the liveness check of the session.
func (c *Consumer) pollLag(client sarama.Client, parts []partitionKey) error {
	for _, k := range parts {
		hwm, err := client.GetOffset(k.topic, k.partition, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("kafka: high-water mark of %s/%d: %w", k.topic, k.partition, err)
		}
		next := c.nextOffset(k).Load()
		lag := int64(0)
		if next >= 0 && hwm > next {
			lag = hwm - next
		}
		c.m.KafkaLag.WithLabelValues(k.topic, strconv.Itoa(int(k.partition))).Set(float64(lag))
	}
	return nil
}
