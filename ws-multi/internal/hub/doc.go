// Package hub is ws-multi's sharded fan-out: it owns every connection's subscriptions and
// send queue and turns one encoded Kafka record into frames for every subscriber, on every
// core at once.
//
// # Shards
//
// The hub is split into Config.Shards shards (WS_SHARDS, default GOMAXPROCS). A shard owns a
// subset of the connections and its own subscription index (channel -> subscriber slice,
// topic -> wildcard subscriber slice) and runs on one goroutine; only that goroutine reads or
// writes the index, so the index has no lock. Each record's pre-encoded *protocol.Message is
// published to every shard, and each shard fans it out to its own subscribers in parallel
// with the others. There is no global lock anywhere on the broadcast path.
//
// Sharding function: a new connection goes to the shard holding the fewest connections
// (ties broken round-robin; Hub.pick). Fan-out work per shard grows with its connections, and
// unlike id-modulo-shards it stays balanced when connections come and go unevenly.
//
// # Order
//
// Each Kafka partition is consumed by one goroutine which calls Publish for its records in
// offset order; Publish sends a record to the shards one after the other over FIFO channels,
// and a shard queues it for its clients in the order received. So for every client, a
// partition's records arrive in offset order, whatever the number of partitions and shards.
// Requests of one client go through its shard's control queue in the order they were read,
// and their replies go through the same send queue as records, so a reply follows every
// message queued before its request was handled.
//
// # Queues
//
// A shard has two bounded inbound channels: control events (register, unregister, requests,
// replies, close-all) and records. Control events are served first, so a flood of records
// cannot starve connects and disconnects; the records channel blocks its publisher when full,
// which is back-pressure to Kafka, never to clients.
//
// # Per-client send path
//
// A client's pending slice and byte count sit behind a mutex that belongs to that client
// alone, held for O(1) work and never across I/O. Exactly two goroutines take it on the hot
// path: the client's shard appending a message and the client's writer taking the whole
// pending slice in one swap (one hand-off per batch, not per message). The writer goroutine
// exists only while the client has something to send: the shard starts it when the queue
// becomes non-empty and it exits when it finds the queue empty, so an idle connection costs
// its reader goroutine and nothing else here. Batched frames are assembled in buffers from a
// sync.Pool shared by all writers; the per-frame write deadline (one timer and one context per
// writer run) comes from a pool too, and a client keeps its two small queue slices between
// bursts, so a burst allocates nothing per message. Metrics are counted once per hand-off.
//
// When the Conn implements Corker (the server's connections do), the writer corks the socket
// for each hand-off: its frames collect in a pooled buffer and leave in one write syscall at
// Uncork, which runs under WS_WRITE_TIMEOUT as a socket write deadline. Without it,
// coder/websocket flushes every frame, and with a 1 KiB connection write buffer a frame
// larger than that took two syscalls (measured: 0.18 write syscalls per delivered message in
// the market load, 0.08-0.12 corked). Nothing of a hand-off counts as delivered until the
// uncork succeeded.
//
// A queue (pending messages plus the batch being written) that would pass
// WS_SEND_QUEUE_MESSAGES or WS_SEND_QUEUE_BYTES gets the client cut as slow: the shard marks it closed (no more enqueues), drops it from the index after the
// current fan-out and closes it with 1008 "slow" on a separate goroutine. A frame not written
// within WS_WRITE_TIMEOUT ends the connection (write_timeout). Neither ever blocks the shard.
//
// # Lock order and invariants
//
//   - Lock order: a shard never holds a lock while sending on a channel; Client.mu is a leaf
//     lock (nothing is acquired while holding it); channelCount.mu is a leaf lock taken only
//     when a channel appears in or disappears from a shard (subscribe path, never broadcast).
//   - A *protocol.Message is immutable once published; shards and writers only read it.
//   - Client.subs, Client.removed and every shard map are touched only by the owning shard.
//   - Client.wg.Add happens only under Client.mu while !closed; Finish sets closed before Wait.
//   - Every goroutine has an owner: shards belong to Hub.Run; writer, ping and close
//     goroutines belong to their client, whose Finish (called by the connection's handler)
//     waits for them.
package hub
