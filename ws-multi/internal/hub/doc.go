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
// message queued before its request was handled. Client.Sync is the barrier on that order:
// it goes through the same control queue and returns once the client has no pending message
// and no write in flight (or is gone), i.e. once every reply owed before it is in the
// connection. The server calls it before a rate-limit close.
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
// the client's pending slice with no lock and marks the client dirty. A shard works in
// rounds: one control event, flusher report or tick, or the records already waiting (up to
// 1024); then it writes to each dirty client itself. It corks the client's socket, writes
// the queue's frames (only copies into the cork: nothing can wait for the socket) and offers
// the cork to the socket in one non-blocking write syscall. A socket that takes it all
// (the normal case: clients keep up) leaves nothing behind: no goroutine, no hand-off, no
// wake-up of another thread. This is nats-server's flush coalescing on a shard: under load
// more records arrive per round, so each client gets its messages in fewer, bigger writes.
//
// A write hands the socket frames only until the cork holds more than chunkBytes (64 KiB,
// the cork's flush size) that the socket did not take; the rest of the queue stays queued as
// the shared messages it is, so a burst costs a slow client no copy of its own. A socket
// that does not take everything (its peer reads slowly) gets a flusher goroutine, which
// writes the rest waiting for the socket up to WS_WRITE_TIMEOUT and reports on the shard's
// hand-off channel; the client's new messages wait in its queue meanwhile and go in the next
// write after the report. A flusher only waits on its socket, so there are as many as there
// are full sockets and they cost no CPU while they wait. (The files: shard.go the loop and
// the events, index.go the subscription index and fan-out, queue.go a client's queue from
// enqueue to the socket and the slow rule, writer.go the frames and the flusher.)
//
// Writing from the shard is safe only because no write on a connection ever waits for its
// socket under coder/websocket's per-connection write lock: the server's cork (corkWriter)
// takes every frame, pings, pongs and close frames of other goroutines included, and what the
// socket does not take at once waits in the cork for the flusher or the cork's own drain
// goroutine (the cork bounds those control frames by WS_SEND_QUEUE_BYTES and its drain by
// WS_WRITE_TIMEOUT). So the shard can wait for that lock only while another goroutine copies
// a frame.
//
// Batched frames are assembled in buffers from a sync.Pool shared by all shards, and a client
// keeps its queue slice between rounds while it stays small (64 messages), so a round
// allocates nothing per message unless the shard is far behind.
// Metrics are summed per round and added to the shared counters once (one latency sample per
// client write, its oldest record); a flushed write counts when its flusher reports. Nothing
// of a write counts as delivered until the socket took all of it.
//
// # Slow consumers
//
// A client's queue is its pending messages plus the write being flushed. When a message is
// queued for a client whose queue is past WS_SEND_QUEUE_MESSAGES or WS_SEND_QUEUE_BYTES, the
// slow rule (queue.go) judges whether it drains: it is cut as slow only if its write in
// flight has waited for the socket for more than slowAfter (1 s), or if its queue has stayed
// past a limit for longer than WS_WRITE_TIMEOUT (it does not catch up). A client with no
// write in flight, or whose writes complete, is never cut by a burst it is draining; its
// queue grows past the limits meanwhile, as pointers to shared messages. Only a client over a
// limit reads the clock. A client cut as slow is no longer queued for, leaves the index after
// the current fan-out and is closed with 1008 "slow" on a separate goroutine
// (ws_send_queue_overflow_total). A flush not done within WS_WRITE_TIMEOUT ends the
// connection (write_timeout). Neither ever blocks the shard.
//
// # Lock order and invariants
//
//  1. Only the shard goroutine reads or writes its maps and dirty list, a client's subs,
//     removed, gone, dirty, queue (pending, inflight, owed), flushing, the slow rule's
//     flushSince and overSince, and synced (a waiting Sync).
//  2. At most one write per client is out: the shard writes only to a client without a
//     flusher, so a client's frames never interleave and messages keep their queue order.
//  3. No Conn.Write between Cork and TryUncork waits for the socket (the cork copies), and no
//     other goroutine's write waits for it either, so coder/websocket's write lock is held only
//     while bytes are copied.
//  4. The shard never waits: not on a socket, a flusher or another shard. It never holds a
//     lock while sending on a channel; Client.mu (lifecycle: closed, reason, pinging) is a
//     leaf lock, never taken per message; channelCount.mu is a leaf lock taken only when a
//     channel appears in or disappears from a shard (subscribe path, never broadcast).
//  5. Finish has the shard handle the client's unregister before it waits for the client's
//     goroutines; after that no flusher starts for it, so the wait cannot miss one, and a
//     waiting flusher ends because Finish's close closes the socket under it.
//  6. A flusher's report is the only way a client's flushing ends, and the hand-off channel
//     is drained every round, so a report never waits long.
//  7. A *protocol.Message is immutable once published; shards and writers only read it.
//  8. Every goroutine has an owner: shards belong to Hub.Run; flusher, ping and close
//     goroutines belong to their client, whose Finish (called by the connection's handler)
//     waits for them; flushers also end when their shard stops.
//  9. The hot path (fan-out, enqueue of a client under its limits, the write of a client
//     that keeps up) allocates nothing per message, makes no syscall but the one write per
//     client and round, and reads the clock per round, never per message or client: a
//     record round three times (its start, time.Since for the fan-out histogram, and
//     writeDirty's time.Now when a client has something to write), a control round once
//     (writeDirty's, when a client has something to write); a flusher's report reads it once
//     more. The slow rule's clock, the chunk's Buffered and the Sync release run only over
//     a limit, past chunkBytes, or with a Sync waiting.
package hub
