// This file is duplicated from ws-single (internal/kafka/partition.go) on purpose: the variants
// share the consumer; it hands records to hub.Publish in both.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// A session's partitions: where each starts or resumes, and how its records reach the
// history and the hub.

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

// forgetPartitions drops the next offsets of topic's partitions not in keep (partitions of a
// deleted topic that its new incarnation does not have).
func (c *Consumer) forgetPartitions(topic string, keep map[int32]int64) {
	c.nextMu.Lock()
	defer c.nextMu.Unlock()
	for k := range c.next {
		if _, ok := keep[k.partition]; k.topic == topic && !ok {
			delete(c.next, k)
		}
	}
}

// startPartition opens st.k at next, or, when next is unknown (-1) or out of range, at an
// explicit offset from the start policy, so the first offset consumed is always known:
//   - a first start: the log start for oldest; for newest a warm start,
//     max(log start, HWM - history records), so the history is loaded before Ready;
//   - an out-of-range next (records deleted meanwhile, a broker reset): an offset_reset gap
//     from next. Oldest restarts at the log start; newest skips only what is gone: the log
//     start when next is below it, the HWM when next is past it (no warm start: those
//     records were delivered under the old offsets, or never existed).
func (c *Consumer) startPartition(client sarama.Client, consumer sarama.Consumer, st *partStart, next int64) error {
	k := st.k
	if next >= 0 {
		pc, err := consumer.ConsumePartition(k.topic, k.partition, next)
		if err == nil {
			st.pc, st.offset = pc, next
			return nil
		}
		if !errors.Is(err, sarama.ErrOffsetOutOfRange) {
			return fmt.Errorf("kafka: consume %s/%d at %d: %w", k.topic, k.partition, next, err)
		}
		c.m.KafkaErrors.Inc()
		st.gap, st.from = protocol.GapOffsetReset, next
	}
	oldest, err := client.GetOffset(k.topic, k.partition, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("kafka: log start of %s/%d: %w", k.topic, k.partition, err)
	}
	hwm, err := client.GetOffset(k.topic, k.partition, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("kafka: high-water mark of %s/%d: %w", k.topic, k.partition, err)
	}
	switch {
	case c.cfg.StartOffset == config.StartOldest:
		st.offset = oldest
	case st.gap == protocol.GapOffsetReset:
		st.offset = min(max(next, oldest), hwm)
	default:
		st.offset = max(oldest, hwm-int64(c.hist.Config().Records))
	}
	if st.gap == protocol.GapOffsetReset && st.offset == next {
		// In range again by now (the log moved between the two calls): nothing was skipped.
		st.gap = ""
	} else {
		st.fresh = true
	}
	pc, err := consumer.ConsumePartition(k.topic, k.partition, st.offset)
	if err != nil {
		return fmt.Errorf("kafka: consume %s/%d from %s at %d: %w", k.topic, k.partition, c.cfg.StartOffset, st.offset, err)
	}
	st.pc = pc
	return nil
}

// consume hands k's records to ring and then to the publisher until ctx ends or the
// partition consumer fails, then closes the partition consumer and drains it.
func (c *Consumer) consume(ctx context.Context, pc sarama.PartitionConsumer, k partitionKey, ring *history.Ring, ended chan<- error) {
	defer drain(pc)
	next := c.nextOffset(k)
	counters := c.records[k.topic]
	// Records below ringNext are held already: appended before a Publish that failed as the
	// last session ended. They are published again, not appended again. This goroutine is
	// the ring's one writer, so its own copy stays exact.
	ringNext := ring.Stats().Next
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
				// In the ring before the hub: whatever the hub has fanned out is held
				// (the hub's frontier never passes the ring's next).
				if msg.Offset >= ringNext {
					ring.Append(m)
					ringNext = msg.Offset + 1
				}
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
				// The next session finds next out of range and announces the gap.
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
