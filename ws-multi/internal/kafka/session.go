// This file is duplicated from ws-single (internal/kafka/session.go) on purpose: the variants share the consumer.

package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// partStart is where one partition starts in a session, decided before its goroutine runs.
type partStart struct {
	k      partitionKey
	pc     sarama.PartitionConsumer
	offset int64 // the first offset its goroutine consumes
	// fresh: not a resume at the partition's next offset (a first start, an offset reset, a
	// new epoch), so its ring restarts at offset.
	fresh bool
	gap   string // protocol.GapOffsetReset or protocol.GapEpochChanged; "" for none
	from  int64  // the gap's first missing offset: the next offset the session could not resume at
	ring  *history.Ring
}

// session runs one sarama client until it fails or ctx ends. It reports
// whether it got every partition consuming.
func (c *Consumer) session(ctx context.Context) (attached bool, err error) {
	sc := c.saramaConfig()
	client, err := sarama.NewClient(c.cfg.Brokers, sc)
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

	epochs, err := readEpochs(client, sc.Version, c.cfg.Topics)
	if err != nil {
		return false, err
	}
	var parts []partitionKey
	for _, topic := range c.cfg.Topics {
		starts, err := c.attachTopic(sctx, client, consumer, topic, epochs[topic])
		if err != nil {
			return false, err
		}
		for _, st := range starts {
			parts = append(parts, st.k)
			wg.Go(func() { c.consume(sctx, st.pc, st.k, st.ring, ended) })
		}
	}

	ticker := time.NewTicker(c.cfg.LagInterval)
	defer ticker.Stop()
	hwms, err := c.pollLag(client, sc.Version, parts)
	if err != nil {
		return false, err
	}
	c.setTargets(hwms)
	c.setAttached(true)
	c.log.Info("kafka attached", zap.Strings("topics", c.cfg.Topics), zap.Int("partitions", len(parts)))
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-ended:
			return true, err
		case <-ticker.C:
			if _, err := c.pollLag(client, sc.Version, parts); err != nil {
				return true, err
			}
		}
	}
}

// attachTopic opens every partition of topic where it starts, attaches the topic to the
// history under epoch, and announces the gaps of partitions that could not resume where
// they stopped, before any record of theirs. It then records the partitions' next offsets
// and the topic's epoch: a session failing before that retries the same decisions, gaps
// included. The caller starts one goroutine per returned partition.
func (c *Consumer) attachTopic(ctx context.Context, client sarama.Client, consumer sarama.Consumer, topic, epoch string) (starts []*partStart, err error) {
	defer func() {
		if err != nil {
			for _, st := range starts {
				drain(st.pc)
			}
			starts = nil
		}
	}()
	old, known := c.epochs[topic]
	changed := known && old != epoch
	ids, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: partitions of %s: %w", topic, err)
	}
	offsets := make(map[int32]int64, len(ids))
	for _, p := range ids {
		st := &partStart{k: partitionKey{topic, p}}
		next := c.nextOffset(st.k).Load()
		if changed && next >= 0 {
			// The old topic's offsets mean nothing in the new one: start as if new. The gap
			// runs from the first record of the old topic not delivered (from) to the last
			// offset before the new topic's stream (offset-1, the position a client has
			// after it). The two are in different offset spaces, so to may be below from:
			// the reason says so, and to is what a client and the hub continue from.
			st.gap, st.from, next = protocol.GapEpochChanged, next, -1
		}
		if err := c.startPartition(client, consumer, st, next); err != nil {
			return starts, err
		}
		starts = append(starts, st)
		offsets[p] = st.offset
	}
	// Attach's own report of a new epoch is not needed: changed decided it above, from the
	// epoch the next offsets were taken under, which also covers a session that attached
	// the new epoch and failed before announcing its gaps.
	c.hist.Attach(topic, epoch, offsets)
	for _, st := range starts {
		st.ring = c.hist.Ring(history.Part{Topic: topic, Partition: st.k.partition})
		if st.fresh {
			// Nothing before offset is held: the ring starts there (a no-op for a ring
			// Attach just created at offset; a ring left by a failed session may differ).
			st.ring.Reset(st.offset)
		}
		if st.gap != "" {
			if err := c.publishGap(ctx, st); err != nil {
				return starts, err
			}
		}
	}
	for _, st := range starts {
		c.nextOffset(st.k).Store(st.offset)
		if st.fresh {
			c.dropTarget(st.k) // a restarted partition has nothing left to catch up to
		}
	}
	if changed {
		c.forgetPartitions(topic, offsets)
	}
	c.epochs[topic] = epoch
	return starts, nil
}

// publishGap announces st's gap to the topic's subscribers, counts it and logs it once.
func (c *Consumer) publishGap(ctx context.Context, st *partStart) error {
	to := st.offset - 1
	if err := c.pub.Publish(ctx, protocol.EncodeGap(st.k.topic, st.k.partition, st.from, to, st.gap)); err != nil {
		return fmt.Errorf("kafka: gap of %s/%d: %w", st.k.topic, st.k.partition, err)
	}
	c.m.LiveGaps.WithLabelValues(st.k.topic, st.gap).Inc()
	c.log.Warn("kafka live gap: records skipped", zap.String("topic", st.k.topic),
		zap.Int32("partition", st.k.partition), zap.Int64("from", st.from), zap.Int64("to", to),
		zap.String("reason", st.gap))
	return nil
}
