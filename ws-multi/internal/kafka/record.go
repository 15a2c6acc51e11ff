// This file is duplicated from ws-single (internal/kafka/record.go) on purpose: the variants
// share how a Kafka record becomes its message.

package kafka

import (
	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// topicCounters are one topic's series, resolved once.
type topicCounters struct {
	consumed       prometheus.Counter // ws_kafka_records_consumed_total{topic}
	tooLarge       prometheus.Counter // ws_kafka_records_skipped_total{topic,reason="too_large"}
	invalidChannel prometheus.Counter // ws_kafka_records_skipped_total{topic,reason="invalid_channel"}
}

// encodeRecord builds the record's message, its channel and wire bytes, once: the "message"
// line, or the "skipped" line when the value is longer than maxBytes. It returns a nil
// message for a record that goes to nobody: its "channel" headers break the rule of
// protocol.RecordChannel. skip is the Skip* reason the record falls under ("" if none), and
// headers its number of "channel" headers (for the log).
//
// The live consumer (Consumer.encode) and the catch-up reader (Reader) both use it, so a
// replayed record is the same bytes as the live one, skipped lines and drops included.
func encodeRecord(msg *sarama.ConsumerMessage, maxBytes int) (m *protocol.Message, skip string, headers int) {
	var header []byte
	for _, h := range msg.Headers {
		if h != nil && string(h.Key) == "channel" {
			if headers == 0 {
				header = h.Value
			}
			headers++
		}
	}
	channel, ok := protocol.RecordChannel(msg.Topic, msg.Key, header, headers)
	if !ok {
		return nil, SkipInvalidChannel, headers
	}
	rec := protocol.Record{
		Channel:   channel,
		Topic:     msg.Topic,
		Partition: msg.Partition,
		Offset:    msg.Offset,
		Timestamp: msg.Timestamp,
		Value:     msg.Value,
	}
	if len(msg.Value) > maxBytes {
		return protocol.EncodeSkipped(rec, SkipTooLarge, len(msg.Value)), SkipTooLarge, headers
	}
	return protocol.EncodeRecord(rec), "", headers
}

// encode is encodeRecord for the live consumer: it logs a record going to nobody and returns
// the skip counter the record falls under (nil if none) rather than incrementing it: consume
// counts it with consumed_total, once the record is done with (published, or going to nobody)
// and the resume offset is past it. A record whose Publish fails (the session ends) is
// consumed again by the next session and must not count twice.
func (c *Consumer) encode(msg *sarama.ConsumerMessage, counters topicCounters) (*protocol.Message, prometheus.Counter) {
	m, skip, headers := encodeRecord(msg, c.cfg.MaxRecordBytes)
	switch skip {
	case SkipInvalidChannel:
		// Sampled (New); never the value, which may be large or sensitive.
		c.log.Warn("kafka record with an invalid channel header; not delivered",
			zap.String("topic", msg.Topic), zap.Int32("partition", msg.Partition),
			zap.Int64("offset", msg.Offset), zap.Int("channel_headers", headers))
		return nil, counters.invalidChannel
	case SkipTooLarge:
		return m, counters.tooLarge
	}
	return m, nil
}
