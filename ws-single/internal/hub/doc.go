// Package hub fans Kafka records out to WebSocket clients on one core.
//
// # Design
//
// One goroutine, the hub loop (Hub.Run), owns all hub state: the set of
// clients, the subscription index (channel -> subscribers, topic -> wildcard
// subscribers) and every client's send queue. Everybody else talks to it over
// channels:
//
//   - reader goroutines (one per connection, in the server) send register,
//     unregister, request, error-reply and sync events on the control channel
//     (hub.go: the API; loop.go: the events and the loop);
//   - Kafka partition goroutines send encoded records on the publish channel;
//   - flusher goroutines (see below) report on the hand-off channel.
//
// The loop works in rounds. A round is the control events waiting (up to 32;
// they come first: they are few, readers are rate-limited, and a record flood
// must not delay a registration or an unsubscribe), or the flusher reports
// waiting, or the records waiting (up to 1024); then the loop writes to every
// client that got something in the round. All three channels are bounded; the sizes are
// justified in loop.go.
//
// There is no mutex on the fan-out path: fanout (index.go) looks the
// record's channel up in a map, walks a slice of subscribers, and appends the
// same *protocol.Message to each subscriber's pending slice (queue.go). A record is encoded once, by the Kafka
// goroutine, into its final wire bytes; recipients share them.
//
// # Writes from the loop
//
// At the end of a round the loop calls Conn.Write for each client with
// pending messages: the server corks the socket, writes the frames (they only
// land in memory) and offers them to the socket in one non-blocking syscall.
// When the socket takes everything (the normal case: clients keep up), the
// write is done: no goroutine, no hand-off, no scheduling. Each Write returns
// what it put on the socket (Written: lines, frames, bytes, oldest record
// time), and the loop counts it in the metrics once the socket took all of it:
// at once, or when the write's flusher reports it out. Under load more
// records arrive per round, so each client gets its messages in fewer,
// bigger writes (nats-server's flush coalescing).
//
// Writes are chunks: a Write hands the socket frames only until more than
// about 64 KiB wait in the connection's buffer that the socket did not take,
// and says how many messages it took; the rest of the queue stays queued as the
// shared messages it is, so a burst is never copied per client. While the
// socket takes every chunk at once the next one follows in the same round.
//
// A socket that does not take everything (its peer reads slowly) gets a
// flusher goroutine, which calls Conn.Flush to write the rest of the chunk,
// waiting for the socket within the write timeout, and reports on the hand-off
// channel; the client's other messages wait in its queue meanwhile and go in
// the next write after the report. A flusher only waits on its socket: an idle
// or keeping-up client has its reader goroutine and nothing else.
//
// The loop may write to a socket only because nothing on a connection waits
// for the socket under coder/websocket's write lock: the server's cork takes
// every frame, control frames of other goroutines included, and keeps what
// the socket does not take for a flusher or its own drain goroutine.
//
// # Slow consumers
//
// A client's queue is its pending messages plus the write in flight. It is
// judged only when a message is queued for it (under new traffic) and only
// when the queue is past SendQueueMessages or SendQueueBytes: then the client
// is cut as slow (Conn.Overflow: 1008 "slow") unless it is draining. It is not
// draining when its write in flight has waited for the socket for more than
// slowAfter (1 s), or when its queue has stayed past a limit for longer than
// WriteTimeout. A client with no write in flight, or whose writes complete, is
// never cut by a burst it is draining. The wait of a write in flight is
// measured from when its flusher started (write reads the clock then, only for
// a socket that did not take a write at once), so a client whose socket has
// been stuck for more than slowAfter is cut the first time its queue goes past
// a limit. The clock is also read for a client past a limit (the
// WriteTimeout count, which a queue back within the limits restarts: settle).
// Tests drive these timers with testing/synctest's fake clock.
//
// # Sync
//
// Hub.Sync is the barrier of the rate-limit close: it returns once every
// message queued for the client before it, the replies owed to the requests
// already accepted included, has been handed to the connection (no pending
// message, no write in flight), or the client is gone.
//
// # Resume
//
// The loop owns the live stream's frontier: seen, per partition, the last offset it fanned
// out. The Kafka goroutine of a partition appends each record to the partition's history
// ring before publishing it (package history), so the ring always holds what the loop has
// fanned out. A resume (resume.go) is served in one control event: the loop plans it
// (history.Plan: epochs, positions, ranges (position, frontier)), replays each range the ring
// covers, and subscribes the channels, all before the next record; replay ends at the
// frontier and live starts there, so the seam has no gap and no duplicate by construction,
// with no buffer. A range older than the ring goes to a catch-up goroutine (the hub's: Run
// waits for it) reading Kafka through Reader; meanwhile the client's writes stop at the
// resume's place in its queue, live records queue behind it (charged to the queue limits:
// past one, the resume ends "overflow" instead of the client being cut), and its requests
// wait (deferred); the replay is spliced in at the place when the reader reports. A client
// ahead of this instance (it comes from one that was ahead) gets a skip filter (Client.skip)
// dropping the live records it has had.
//
// Gaps (protocol.KindGap, published by the consumer in order with the partition's records)
// go to every subscriber of the topic and move the frontier; marks (mark.go) go to
// positioned subscribers every MarkInterval in which a topic moved, encoded once per topic.
//
// # Conflation
//
// A subscription may conflate (docs/PROTOCOL.md, Conflation). While behind (conflate.go), a
// client's own queue keeps one record per key (channel, partition) for its behind-mode
// subscriptions: a newer record leaves a hole where the older one was and goes to the end,
// after its conflated line; holes are squeezed out before the next write, and what
// conflation bounds does not count toward the slow-consumer limits. At an interval
// (interval.go), the loop keeps one bucket per topic partition and interval, fed by fanout
// and released on a ticker that runs only while someone subscribes at an interval; a bucket
// sends to the channel's and the wildcard's subscribers at its interval, encoding a message
// once for all of them. A client that never asked for conflation has a nil Client.conf: one
// nil check per record queued for it.
//
// # Invariants
//
//  1. Only the loop goroutine reads or writes Hub maps, the fields of Client
//     (but conn and flushers), dirty and the counters; a write in flight's
//     Written (Client.owed) is set by the loop before its flusher starts and
//     read by the loop after the flusher reported.
//  2. At most one write per client is out: the loop writes only to a client
//     without a flusher, so Conn.Write and Conn.Flush never run concurrently
//     for one client and messages keep their queue order: for one client, a
//     partition's records arrive in offset order and a reply follows every
//     message queued before its request.
//  3. Conn.Write never waits for the socket, so the loop never does.
//  4. The hot path (fanout, enqueue of a client within its limits, write of
//     a client that keeps up) allocates nothing per message and makes no
//     syscall but the write. The hub loop reads the clock on it only to count
//     a write that carries a record (Hub.count: time.Since of the write's
//     oldest record, for the delivery latency), once per write, not per
//     message.
//  5. A client cut as slow, or whose write failed, or that unregisters, is
//     dropped (drop) at once from deliveries: it is marked gone, so enqueue and
//     write skip it, and its queue is cleared. Its removal from the
//     subscription index is deferred (Hub.dropped) until the current event is
//     done (unindex, after the fan-out: fanout may be walking the very
//     subscriber slice the removal would change), and Conn.Overflow tells the
//     server to close a slow one.
//  6. Unregister returns only after the loop has forgotten the client; after
//     that no flusher is started for it, so Client.Wait cannot miss one.
//  7. A record reaches a client once even when it is subscribed to both the
//     record's channel and its topic wildcard (a per-fan-out sequence mark).
//  8. Every Sync caller is released: when the client's queue is out (settle)
//     or when it is dropped.
//
// The hub knows nothing of sockets, close codes, disconnect reasons or pings:
// those are the server's (it also keeps its own set of live connections for
// the drain).
package hub
