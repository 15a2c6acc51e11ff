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
// A client's send queue belongs to its shard, like the index: the shard appends a message to
// the client's pending slice with no lock, and hands the whole slice to the client's writer
// goroutine in one swap (one hand-off per batch, not per message), keeping the writer's last
// slice, cleared, for the next messages. The writer exists only while the client has
// something to send: the shard starts it with the first batch; the writer writes it, reports
// on the shard's hand-off channel and waits on the client's batch channel for the next batch,
// or nil when the queue is empty, and then ends. So an idle connection costs its reader
// goroutine and nothing else here. Batched frames are assembled in buffers from a sync.Pool
// shared by all writers, and a client keeps its two small queue slices between bursts, so a
// burst allocates nothing per message. Metrics are counted once per hand-off.
//
// # Writer slots
//
// The Go run queue is first in, first out: with a writer goroutine runnable per busy client
// (thousands under load), every shard goroutine, sarama fetch hop, reader and ping timer
// waited behind all of them, and shards fanned records out late. So each shard lets at most
// 128 batches out at a time (defaultMaxWriters). A client that gets messages while every slot
// is taken joins the shard's FIFO of clients waiting for one, and its queue keeps growing into
// a bigger batch meanwhile; a writer whose client has more while others wait parks, its
// hand-off unanswered, at the end of that FIFO. A slot frees when its writer reports, or when
// its batch has been out for longer than 20 ms (a socket that is not draining; checked by a
// timer that runs only while batches are out), so slow clients cannot hold every slot. This is
// ws-single's design, per shard.
//
// When the Conn implements Corker (the server's connections do), the writer corks the socket
// for each hand-off: its frames collect in a pooled buffer and leave in one write syscall at
// Uncork, which runs under WS_WRITE_TIMEOUT as a socket write deadline. Corked frames are
// written without a per-frame context or timer (they cannot block); without a Corker, a
// frame writer re-arms one timer per frame. Without it,
// coder/websocket flushes every frame, and with a 1 KiB connection write buffer a frame
// larger than that took two syscalls (measured: 0.18 write syscalls per delivered message in
// the market load, 0.08-0.12 corked). Nothing of a hand-off counts as delivered until the
// uncork succeeded.
//
// A queue (pending messages plus the batch being written) that would pass
// WS_SEND_QUEUE_MESSAGES or WS_SEND_QUEUE_BYTES gets the client cut as slow: the shard stops
// queueing for it at once, drops it from the index after the current fan-out and closes it
// with 1008 "slow" on a separate goroutine. A hand-off not written within WS_WRITE_TIMEOUT
// ends the connection (write_timeout). Neither ever blocks the shard.
//
// # Lock order and invariants
//
//  1. Only the shard goroutine reads or writes its maps, a client's subs, removed, gone, queue
//     (pending, spare, inflight), writer state (writing, waiting, queued, slot) and its
//     writer slots; a writer touches only the batch it was handed, which the shard no longer
//     references until the hand-off returns it.
//  2. At most one batch per client is out (handed out, not yet reported; a stalled batch that
//     stopped counting in a slot is still out), so a client's Conn.Write never runs
//     concurrently with itself and messages keep their queue order.
//  3. A writer answered nil may still be alive when the shard starts its successor; either may
//     take either answer, since both only wait on the batch channel, and invariant 2 holds
//     because a batch is handed out only when none is out. The channel's size (2) keeps the
//     shard from ever waiting on it.
//  4. The shard never waits: not on a socket, a writer or another shard. It never holds a
//     lock while sending on a channel; Client.mu (lifecycle: closed, reason, pinging) is a
//     leaf lock, never taken per message; channelCount.mu is a leaf lock taken only when a
//     channel appears in or disappears from a shard (subscribe path, never broadcast).
//  5. Finish has the shard handle the client's unregister before it waits for the client's
//     goroutines; after that no writer starts for it, so the wait cannot miss one, and a
//     writer parked for a slot was answered nil.
//  6. At most maxWriters counted batches are out per shard, and a free slot means nobody
//     waits for one (after every event the shard hands free slots to the FIFO, oldest
//     first). A client is in the FIFO at most once and never while a batch of its counts.
//  7. A *protocol.Message is immutable once published; shards and writers only read it.
//  8. Every goroutine has an owner: shards belong to Hub.Run; writer, ping and close
//     goroutines belong to their client, whose Finish (called by the connection's handler)
//     waits for them; writers also end when their shard stops.
package hub
