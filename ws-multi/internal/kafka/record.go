package kafka

import (
	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// message returns what a record's subscribers get and, for a record not delivered, the
// skip counter to add once it is handed over:
//   - its channel (protocol.RecordChannel: the "channel" header rule) refused: nothing, and a
//     warning naming the record (never its value); the logger is sampled (main's zap
//     sampling), so a producer writing bad headers cannot flood the logs;
//   - a value longer than MaxRecordBytes: the "skipped" notice, on the record's channel and
//     in its offset order;
//   - else the record's message.
func (c *Consumer) message(p *partition, rec *sarama.ConsumerMessage) (*protocol.Message, prometheus.Counter) {
	var header []byte
	headers := 0
	for _, h := range rec.Headers {
		if h != nil && string(h.Key) == "channel" {
			if headers == 0 {
				header = h.Value
			}
			headers++
		}
	}
	channel, ok := protocol.RecordChannel(rec.Topic, rec.Key, header, headers)
	if !ok {
		c.log.Warn("kafka record skipped: its channel header is not one channel of its topic",
			zap.String("topic", rec.Topic), zap.Int32("partition", rec.Partition),
			zap.Int64("offset", rec.Offset), zap.Int("channel_headers", headers))
		return nil, p.invalidChannel
	}
	r := protocol.Record{
		Channel:   channel,
		Topic:     rec.Topic,
		Partition: rec.Partition,
		Offset:    rec.Offset,
		Timestamp: rec.Timestamp,
		Value:     rec.Value,
	}
	if len(rec.Value) > c.cfg.MaxRecordBytes {
		return protocol.EncodeSkipped(r, SkipTooLarge, len(rec.Value)), p.tooLarge
	}
	return protocol.EncodeRecord(r), nil
}
