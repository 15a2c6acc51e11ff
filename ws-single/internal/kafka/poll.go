// This file is duplicated from ws-multi (internal/kafka/poll.go) on purpose: the variants share the consumer.

package kafka

import (
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
)

// pollLag runs every LagInterval and once before a session counts as attached; it is the
// session's liveness check, failing when the broker cannot answer. It checks the topics'
// epochs, reads every partition's high-water mark (returned, for Ready's first targets) and
// log start, and sets:
//   - ws_kafka_consumer_lag{topic,partition}, and the summed lag Ready compares with
//     ReadyMaxLag;
//   - each ring's log start (the retention check of a resume), and drops its records older
//     than the history's MaxAge (a quiet partition appends nothing that would drop them);
//   - ws_history_records, ws_history_bytes and ws_history_oldest_age_seconds{topic,partition}.
func (c *Consumer) pollLag(client sarama.Client, version sarama.KafkaVersion, parts []partitionKey) (map[partitionKey]int64, error) {
	if err := c.checkEpochs(client, version); err != nil {
		return nil, err
	}
	now := time.Now()
	hwms := make(map[partitionKey]int64, len(parts))
	var total int64
	for _, k := range parts {
		hwm, err := client.GetOffset(k.topic, k.partition, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("kafka: high-water mark of %s/%d: %w", k.topic, k.partition, err)
		}
		oldest, err := client.GetOffset(k.topic, k.partition, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("kafka: log start of %s/%d: %w", k.topic, k.partition, err)
		}
		hwms[k] = hwm
		next := c.nextOffset(k).Load()
		lag := int64(0)
		if next >= 0 && hwm > next {
			lag = hwm - next
		}
		total += lag
		label := strconv.Itoa(int(k.partition))
		c.m.KafkaLag.WithLabelValues(k.topic, label).Set(float64(lag))

		ring := c.hist.Ring(history.Part{Topic: k.topic, Partition: k.partition})
		if ring == nil {
			continue // not attached (cannot happen once the session started it)
		}
		ring.SetLogStart(oldest)
		ring.Trim(now)
		st := ring.Stats()
		age := 0.0
		if !st.Oldest.IsZero() {
			age = max(now.Sub(st.Oldest).Seconds(), 0)
		}
		c.m.HistoryRecords.WithLabelValues(k.topic, label).Set(float64(st.Records))
		c.m.HistoryBytes.WithLabelValues(k.topic, label).Set(float64(st.Bytes))
		c.m.HistoryOldestAge.WithLabelValues(k.topic, label).Set(age)
	}
	c.lag.Store(total)
	return hwms, nil
}
