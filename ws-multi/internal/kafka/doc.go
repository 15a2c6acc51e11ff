// Package kafka consumes every partition of the configured topics with sarama (no consumer
// group: every instance broadcasts everything) and hands each record, encoded once into its
// wire bytes, to the hub (Publisher).
//
// A record's channel follows protocol.RecordChannel: "<topic>:<key>" or "<topic>", or its
// one "channel" header when that names a channel of the record's own topic. A record whose
// channel headers break that rule goes to nobody
// (ws_kafka_records_skipped_total{reason="invalid_channel"}). A record whose value is longer
// than WS_MAX_RECORD_BYTES is replaced by a "skipped" line on its channel, in its offset
// order (ws_kafka_records_skipped_total{reason="too_large"}); record.go. Both count in
// ws_kafka_records_consumed_total.
//
// It survives broker outages: any consumer error ends the current session, and the consumer
// reconnects with exponential backoff and resumes every partition where it stopped, or at
// the configured start offset (config.StartNewest, config.StartOldest) when that offset no
// longer exists (a broker reset). WebSocket clients are unaffected throughout.
package kafka
