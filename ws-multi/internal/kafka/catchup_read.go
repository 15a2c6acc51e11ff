// This file is duplicated from ws-single (internal/kafka/catchup_read.go) on purpose: the variants share the consumer.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// scan is what one Read has scanned so far, and its match, called one record at a time.
type scan struct {
	records, bytes atomic.Int64
	mu             sync.Mutex
	match          func(*protocol.Message) bool
}

func (s *scan) matches(m *protocol.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.match(m)
}

// opened is what a Read opened on its client: closed after the Read, in the background.
type opened struct {
	consumers []sarama.Consumer // one per wave; written by the Read's goroutine
	mu        sync.Mutex
	pcs       []sarama.PartitionConsumer
}

func (o *opened) add(pc sarama.PartitionConsumer) {
	o.mu.Lock()
	o.pcs = append(o.pcs, pc)
	o.mu.Unlock()
}

// close closes and drains every partition consumer, then the consumers (which leave the
// client open: NewConsumerFromClient does not own it).
func (o *opened) close() {
	for _, pc := range o.pcs {
		drain(pc)
	}
	for _, c := range o.consumers {
		_ = c.Close() // it only unregisters its metrics
	}
}

// span is a range to read, its After resolved.
type span struct {
	history.Range
	// fence is set when a time range starts at the log start (after deleted records): the
	// first record must be stamped at Since or before, else records at or after Since may
	// have been deleted (ListOffsets by time answers the first *retained* record).
	fence    bool
	earliest int64 // the log start, for the fence's OutOfRetentionError
}

// read resolves the time ranges, checks the scan bound on what is known, then reads the
// ranges on rc, all partitions at once: sarama gathers a consumer's new partitions for
// 100 ms before their first fetch, so reading them one after the other would cost that per
// partition.
func (r *Reader) read(ctx context.Context, rc sarama.Client, ranges []history.Range, s *scan, o *opened) ([]*protocol.Message, error) {
	spans := make([]span, 0, len(ranges))
	total := int64(0)
	for _, rg := range ranges {
		sp := span{Range: rg}
		if !rg.Since.IsZero() {
			if err := resolve(rc, &sp); err != nil {
				return nil, err
			}
		}
		if n := sp.Before - sp.After - 1; n > 0 {
			total += n
		}
		spans = append(spans, sp)
	}
	if total > int64(r.cfg.MaxScanRecords) {
		return nil, fmt.Errorf("kafka: catch-up of %d records: %w", total, history.ErrTooFarBehind)
	}
	outs := make([][]*protocol.Message, len(spans))
	for _, wave := range waves(spans) {
		if err := r.readWave(ctx, rc, o, spans, wave, s, outs); err != nil {
			return nil, err
		}
	}
	var out []*protocol.Message
	for _, o := range outs {
		out = append(out, o...)
	}
	return out, nil
}

// waves groups the non-empty spans (indexes) so that no partition is twice in a group: a
// sarama consumer holds one partition consumer per partition. history.Plan gives one range
// per partition, so there is one wave.
func waves(spans []span) [][]int {
	var out [][]int
	var parts []map[history.Part]bool
	for i, sp := range spans {
		if sp.After+1 >= sp.Before {
			continue // nothing between them
		}
		w := 0
		for w < len(out) && parts[w][sp.Part] {
			w++
		}
		if w == len(out) {
			out, parts = append(out, nil), append(parts, map[history.Part]bool{})
		}
		out[w], parts[w][sp.Part] = append(out[w], i), true
	}
	return out
}

// readWave reads the spans of wave at once on a new sarama consumer, one goroutine each,
// into outs; the first error stops the others and is returned.
func (r *Reader) readWave(ctx context.Context, rc sarama.Client, o *opened, spans []span, wave []int, s *scan, outs [][]*protocol.Message) error {
	consumer, err := sarama.NewConsumerFromClient(rc)
	if err != nil {
		return fmt.Errorf("kafka: catch-up consumer: %w", err)
	}
	o.consumers = append(o.consumers, consumer)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, i := range wave {
		wg.Go(func() {
			out, err := r.readRange(wctx, rc, consumer, o, &spans[i], s)
			if err != nil {
				once.Do(func() { first = err; cancel() }) // the others then end with wctx
				return
			}
			outs[i] = out
		})
	}
	wg.Wait()
	return first
}

// resolve sets a time range's After: the offset before the first record stamped at or after
// Since (Kafka's ListOffsets by time); none (-1) leaves nothing to read.
func resolve(rc sarama.Client, sp *span) error {
	off, err := rc.GetOffset(sp.Topic, sp.Partition, sp.Since.UnixMilli())
	if err != nil {
		return fmt.Errorf("kafka: catch-up: offset of %s/%d at %s: %w", sp.Topic, sp.Partition, sp.Since.Format(time.RFC3339Nano), err)
	}
	if off < 0 {
		sp.After = sp.Before - 1
		return nil
	}
	oldest, err := rc.GetOffset(sp.Topic, sp.Partition, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("kafka: catch-up: log start of %s/%d: %w", sp.Topic, sp.Partition, err)
	}
	sp.After = off - 1
	// A log starting at 0 has lost nothing: the topic simply began after Since.
	sp.fence, sp.earliest = off == oldest && oldest > 0, oldest
	return nil
}

// readRange returns the matching messages of sp's records, offsets After+1 to
// Before-1. It stops as soon as it has the record at Before-1 (or any past it: the one at
// Before-1 may have been compacted), so it never waits on the log's end.
func (r *Reader) readRange(ctx context.Context, rc sarama.Client, consumer sarama.Consumer, o *opened, sp *span, s *scan) ([]*protocol.Message, error) {
	var out []*protocol.Message
	first, last := sp.After+1, sp.Before-1
	pc, err := consumer.ConsumePartition(sp.Topic, sp.Partition, first)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return nil, outOfRange(rc, sp.Part, first, err)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: catch-up of %s/%d at %d: %w", sp.Topic, sp.Partition, first, err)
	}
	o.add(pc)
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: catch-up of %s/%d: %w", sp.Topic, sp.Partition, ctx.Err())
		case msg, ok := <-pc.Messages():
			if !ok {
				return nil, fmt.Errorf("kafka: catch-up of %s/%d: %w", sp.Topic, sp.Partition, errPartitionEnded)
			}
			if msg.Offset > last {
				return out, nil
			}
			if s.records.Add(1) > int64(r.cfg.MaxScanRecords) || s.bytes.Add(int64(len(msg.Value))) > int64(r.cfg.MaxScanBytes) {
				return nil, fmt.Errorf("kafka: catch-up past %d records or %d bytes: %w", r.cfg.MaxScanRecords, r.cfg.MaxScanBytes, history.ErrTooFarBehind)
			}
			if sp.fence {
				sp.fence = false
				if msg.Timestamp.After(sp.Since) {
					return nil, &history.OutOfRetentionError{Part: sp.Part, Earliest: sp.earliest}
				}
			}
			if m, _, _ := encodeRecord(msg, r.cfg.MaxRecordBytes); m != nil && s.matches(m) {
				out = append(out, m)
			}
			if msg.Offset >= last {
				return out, nil
			}
		case cerr, ok := <-pc.Errors():
			if !ok {
				return nil, fmt.Errorf("kafka: catch-up of %s/%d: %w", sp.Topic, sp.Partition, errPartitionEnded)
			}
			if errors.Is(cerr.Err, sarama.ErrOffsetOutOfRange) {
				return nil, outOfRange(rc, sp.Part, first, cerr.Err)
			}
			return nil, fmt.Errorf("kafka: catch-up of %s/%d: %w", sp.Topic, sp.Partition, cerr.Err)
		}
	}
}

// outOfRange explains an out-of-range read at first: out of retention when first is below
// the log start; otherwise past the log's end (the log was reset), which retention does not
// explain and is reported as the error it is.
func outOfRange(rc sarama.Client, part history.Part, first int64, cause error) error {
	earliest, err := rc.GetOffset(part.Topic, part.Partition, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("kafka: catch-up: log start of %s/%d: %w", part.Topic, part.Partition, err)
	}
	if first < earliest {
		return &history.OutOfRetentionError{Part: part, Earliest: earliest}
	}
	return fmt.Errorf("kafka: catch-up of %s/%d at %d: %w", part.Topic, part.Partition, first, cause)
}
