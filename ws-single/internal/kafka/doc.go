// Package kafka consumes every partition of the configured topics with sarama
// (no consumer group: every server instance broadcasts everything) and hands
// each record, encoded once into its wire bytes, to the hub.
//
// A session is one sarama client with one partition consumer per partition.
// Any failure (broker unreachable, a partition consumer ending, an offset out
// of range) ends the session; Run starts a new one after an exponential
// backoff, resuming every partition at the offset after the last record it
// handed on, or at the configured start policy when that offset no longer
// exists (a broker reset). WebSocket clients are unaffected throughout.
package kafka
