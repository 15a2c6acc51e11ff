// Package hub is ws-multi's sharded fan-out: it owns every connection's subscriptions and
// send queue, turns one encoded Kafka record into writes for every subscriber, on every core
// at once, and counts what was written. It is transport-free: the server's connections
// implement Conn (write, flush, overflow) and own sockets, framing, pings, timers, close
// frames and reasons.
//
// # Shards
//
// The hub is split into Config.Shards shards (WS_SHARDS, default GOMAXPROCS). A shard owns a
// subset of the connections and its own subscription index (channel -> subscriber slice,
// topic -> wildcard subscriber slice) and runs on one goroutine (loop.go); only that
// goroutine reads or writes the index, so the index has no lock. Each record's pre-encoded
// *protocol.Message is published to every shard, and each shard fans it out to its own
// subscribers in parallel with the others. There is no global lock anywhere on the
// broadcast path.
//
// Sharding function: Register puts a new connection on the shard holding the fewest
// connections (ties broken round-robin; Hub.pick) and stores the shard in the Client. Fan-out
// work per shard grows with its connections, and unlike id-modulo-shards it stays balanced
// when connections come and go unevenly.
//
// # Order
//
// Each Kafka partition is consumed by one goroutine which calls Publish for its records in
// offset order; Publish sends a record to the shards one after the other over FIFO channels,
// and a shard queues it for its clients in the order received. So for every client, a
// partition's records arrive in offset order, whatever the number of partitions and shards.
// Requests of one client (Handle, Reject) go through its shard's control queue in the order
// they were read, and their replies go through the same send queue as records, so a reply
// follows every message queued before its request was handled. Hub.Sync is the barrier on
// that order: it goes through the same control queue and returns once the client has no
// pending message and no write in flight (or is gone), i.e. once every reply owed before it
// is in the connection. The server calls it before a rate-limit close.
//
// # Queues
//
// A shard has three bounded inbound channels: ctrl (register, unregister, requests, error
// replies, sync, drain, and its Kafka catch-ups' reports), pub (records and gaps) and next
// (flusher reports), and a mark ticker (Config.MarkInterval). Control events are served
// first, so a flood of records cannot starve connects and disconnects; the records channel
// blocks its publisher when full, which is back-pressure to Kafka, never to clients.
//
// # Per-client send path
//
// A client's send queue belongs to its shard, like the index: the shard appends a message to
// the client's pending slice with no lock and marks the client dirty. A shard works in
// rounds: the control events waiting (up to 32), the flusher reports waiting, or the records
// already waiting (up to 1024); then it writes to each dirty client itself (queue.go):
// Conn.Write takes a prefix of the queue, corks the socket, frames it and offers it to the
// socket in one non-blocking syscall. A socket that takes it all (the normal case: clients keep up) leaves nothing
// behind: no goroutine, no hand-off, no wake-up of another thread. This is nats-server's
// flush coalescing on a shard: under load more records arrive per round, so each client
// gets its messages in fewer, bigger writes.
//
// A Write takes messages only until its connection holds about 64 KiB the socket did not
// take, and says how many it took (Written.Lines); the rest of the queue stays queued as the
// shared messages it is, so a burst costs a slow client no copy of its own. A socket that
// does not take everything gets a flusher goroutine (started by the shard), which calls
// Conn.Flush (waiting for the socket within the write timeout) and reports on next; the
// client's new messages wait in its queue meanwhile and go in the next write after the
// report. A flusher only waits on its socket, so there are as many as there are full
// sockets and they cost no CPU while they wait.
//
// What was written (Written) counts in the metrics once the socket took all of it, at once
// or when its flusher reports, summed per shard round and added to the shared counters once
// per round (one latency sample per write, its oldest record): per write, the shards'
// atomic adds on the same counters would cost cache-line traffic between cores. A client
// keeps its queue slice between rounds while it stays small (64 messages), so a round
// allocates nothing per message unless the shard is far behind.
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
// the current fan-out (ws_send_queue_overflow_total), and Conn.Overflow tells the server,
// which closes it with 1008 "slow" without blocking the shard.
//
// # Resume
//
// Each shard owns its own live frontier: seen, per partition, the last offset it fanned
// out (fanout stores it for every record; a gap, protocol.KindGap, sets it to the gap's last
// missing offset). Shards run at their own pace, so their frontiers differ, and nothing
// needs them to agree: the Kafka goroutine of a partition appends each record to the
// partition's history ring before it publishes it (package history), so whatever a shard
// has fanned out is in the ring. A resume (resume.go) is served by the client's shard in one
// control event: it plans it against its own frontier (history.Plan: epochs, positions,
// ranges (position, frontier)), replays each range the ring covers, and subscribes the
// channels, all before its next record; the replay ends at the shard's frontier and live
// starts there, so the seam has no gap and no duplicate by construction, with no buffer and
// no lock on the broadcast path: the ring's read lock is taken by the shard serving the
// resume, never by a fan-out (a mark or a drain reads the history's partitions and, for a
// partition the shard has not fanned out yet, its ring's start).
//
// A range older than the ring goes to a catch-up goroutine owned by the shard (run waits
// for it; it reports on the shard's ctrl channel, or gives up when the shard's ctx ends)
// reading Kafka through Reader; meanwhile the client's writes stop at the resume's place in
// its queue, live records queue behind it (charged to the queue limits: past one, the resume
// ends "overflow" instead of the client being cut), and its requests and error replies wait
// (deferred, at most maxDeferred), so their replies keep their order; the replay is spliced
// in at the place when the reader reports, and the deferred requests are applied (after the
// current fan-out when an overflow ended the resume inside one, since they may change the
// index it walks). Sync waits for a resume reading Kafka: what it ends with is owed. A
// client ahead of this instance (it comes from one that was ahead) gets a skip filter
// (Client.skip) dropping the live records it has had.
//
// Each shard also keeps a topic index (topic -> its clients subscribed to any channel of the
// topic, maintained on subscribe, unsubscribe and drop): gaps go to every client of the
// topic, and marks (mark.go) to its positioned clients, every MarkInterval in which the
// shard's positions of the topic moved, encoded once per topic and shard. A drain's last
// line (Hub.Drain) carries the client's positions on its shard.
//
// # Conflation
//
// A subscription may conflate (docs/PROTOCOL.md, Conflation). While behind (conflate.go), a
// client's own queue keeps one record per key (channel, partition) for its behind-mode
// subscriptions: a newer record leaves a hole where the older one was and goes to the end,
// after its conflated line; holes are squeezed out before the next write, and what
// conflation bounds does not count toward the slow-consumer limits. At an interval
// (interval.go), each shard keeps one bucket per topic partition and interval, fed by its
// fanout and released on a ticker that runs only while one of its clients subscribes at an
// interval; a bucket sends to the shard's subscribers of the channel and the wildcard at its
// interval, encoding a message once for all of them (so a replaced record counts once per
// shard with such subscribers in ws_conflated_records_total). A client that never asked for
// conflation has a nil Client.conf: one nil check per record queued for it.
//
// # Lock order and invariants
//
//  1. Only the shard goroutine reads or writes its maps (the frontier seen, the topic index
//     and the marks included) and dirty list, a client's subs, topics, removed, gone,
//     dirty, queue (pending, inflight, owed), flushing, the slow rule's flushSince and
//     overSince, synced (a waiting Sync), positioned, skip, recovering and deferred.
//     Client.shard is set by Register before the shard sees the client, and read-only
//     afterwards. A catch-up goroutine writes only its recovery's msgs, read and err, which
//     the shard reads after the goroutine's report.
//  2. At most one write per client is out: the shard writes only to a client without a
//     flusher, so Conn.Write and Conn.Flush never run at once for one client, a client's
//     frames never interleave and messages keep their queue order.
//  3. Conn.Write never waits for the socket, so the shard never does.
//  4. The shard never waits: not on a socket, a flusher, a catch-up or another shard. The
//     locks it takes are leaf locks, none on the broadcast path: channelCount.mu, only when
//     a channel appears in or disappears from a shard (subscribe path), and the history's
//     read locks (a resume, a mark, a drain), which writers hold only for an append.
//  5. Unregister returns once the shard has forgotten the client; after that no flusher
//     starts for it, so Client.Wait cannot miss one. A waiting flusher ends because the
//     server closes the connection before it unregisters.
//  6. A flusher's report is the only way a client's flushing ends, and next is drained
//     in every round without a control event waiting (at most 32 such events go first),
//     so a report never waits long.
//  7. A *protocol.Message is immutable once published; shards and connections only read it.
//  8. Every goroutine has an owner: shards belong to Hub.Run; a flusher belongs to its
//     client, whose Wait (called by the connection's handler) waits for it; flushers also
//     end when their shard stops; a Kafka catch-up belongs to its shard, whose run waits
//     for it before returning (it ends with the shard's ctx, or earlier when its resume is
//     aborted, drained or its client dropped).
//  9. The hot path (fan-out, enqueue of a client under its limits, the write of a client
//     that keeps up) allocates nothing per message, makes no syscall but the one write per
//     client and round, and reads the clock per round, never per message or client: a
//     record round three times (its start, time.Since for the fan-out histogram, and
//     writeDirty's time.Now when a client has something to write), a control round once
//     (writeDirty's, when a client has something to write); a flusher's report reads it once
//     more. The slow rule's clock and the Sync release run only over a limit or with a Sync
//     waiting. Positions add to it only the frontier's map store per record and nil checks
//     (a client's skip filter, its resume in progress).
//  10. Every Sync caller is released: when the client's queue is out or when it is dropped.
package hub
