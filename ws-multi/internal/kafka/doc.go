// This file is duplicated from ws-single (internal/kafka/doc.go) on purpose: the variants share
// the Kafka consumer.

// Package kafka consumes every partition of the configured topics with sarama
// (no consumer group: every server instance broadcasts everything) and hands
// each record, encoded once into its wire bytes, to the history and the hub
// (Publisher); it also reads back, for resumes, what the history no longer holds
// (Reader).
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
// A session (session.go) is one sarama client with one partition consumer per
// partition (partition.go). It reads each topic's id, its epoch (epoch.go), and
// starts every partition at an explicit offset: where the last session left it,
// else the start policy's (a warm start for newest: the last history records of
// each partition, so Ready waits until they are in memory; ready.go). A partition
// that cannot resume where it left off (its offset out of range: records deleted,
// a broker reset; or its topic recreated under a new id) restarts its ring and
// publishes a gap line before any of its records (ws_live_gaps_total). Each
// partition's goroutine appends a record's message to the partition's ring before
// it publishes it, so the hub's frontier never passes what the ring holds.
//
// A session counts as attached from its first successful poll (poll.go), which
// runs every LagInterval for ws_kafka_consumer_lag, the history's log starts,
// trimming and gauges, and the topic ids, and is the session's liveness check. A
// fetch error counts in ws_kafka_errors_total and sarama retries it; the session
// ends when the broker is unreachable, a poll fails, a partition consumer gives up
// (three failures in a row), an offset is out of range or a topic id changed,
// each counted once. Run then starts a new session after an exponential backoff.
// WebSocket clients are unaffected throughout.
//
// The catch-up reader (catchup.go, catchup_read.go) has its own sarama client,
// so its fetches never queue behind or ahead of the live ones on a connection,
// and at most WS_RESUME_READERS reads at once, each bounded in records and bytes
// scanned; it stops each range at its last offset.
//
// Locks: Consumer.readyMu is taken before Consumer.nextMu, never the reverse.
// Reader.mu guards its client and is never held while reading Kafka, except to
// connect the client.
package kafka
