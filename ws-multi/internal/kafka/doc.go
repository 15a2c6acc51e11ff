// This file is duplicated from ws-single (internal/kafka/doc.go) on purpose: the variants share
// the Kafka consumer.

// Package kafka consumes every partition of the configured topics with sarama
// (no consumer group: every server instance broadcasts everything) and hands
// each record, encoded once into its wire bytes, to the hub (Publisher).
//
// A record's channel follows protocol.RecordChannel: "<topic>:<key>" or
// "<topic>", or its one "channel" header when that names a channel of the
// record's own topic. A record whose channel headers break that rule goes to
// nobody (ws_kafka_records_skipped_total{reason="invalid_channel"}, a sampled
// warning without the value). A record whose value is longer than
// WS_MAX_RECORD_BYTES is replaced by a "skipped" line on its channel, in its
// offset order (ws_kafka_records_skipped_total{reason="too_large"}); record.go.
// Both count in ws_kafka_records_consumed_total.
//
// A session (consumer.go) is one sarama client with one partition consumer per
// partition (partition.go), and counts as attached from its first successful
// high-water-mark poll, which runs every LagInterval for ws_kafka_consumer_lag
// and is the session's liveness check. A fetch error counts in
// ws_kafka_errors_total and sarama retries it; the session ends when the broker
// is unreachable, a poll fails, a partition consumer gives up (three failures in
// a row) or an offset is out of range, each counted once. Run then starts a new
// session after an exponential backoff, resuming every partition at the offset
// after the last record it handed on, or at the configured start offset
// (config.StartNewest, config.StartOldest) when that offset no longer exists (a
// broker reset). WebSocket clients are unaffected throughout.
package kafka
