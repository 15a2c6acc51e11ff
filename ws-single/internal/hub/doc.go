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
//     unregister, request and error-reply events on the control channel;
//   - Kafka partition goroutines send encoded records on the publish channel;
//   - flusher goroutines (see below) report on the hand-off channel.
//
// The loop works in rounds. A round is one control event (they come first:
// they are few, readers are rate-limited, and a record flood must not delay a
// registration or an unsubscribe), or the flusher reports waiting, or the
// records waiting (up to 1024); then the loop writes to every client that got
// something in the round. All three channels are bounded; the sizes are
// justified in hub.go.
//
// There is no mutex on the broadcast path: broadcast looks the record's channel
// up in a map, walks a slice of subscribers, and appends the same *Message to
// each subscriber's pending slice. A record is encoded once, by the Kafka
// goroutine, into its final wire bytes; recipients share them.
//
// # Writes from the loop
//
// At the end of a round the loop calls Conn.Write once for each client with
// pending messages: the server corks the socket, writes the frames (they only
// land in memory) and offers them to the socket in one non-blocking syscall.
// When the socket takes everything (the normal case: clients keep up), the
// write is done: no goroutine, no hand-off, no scheduling. Under load more
// records arrive per round, so each client gets its messages in fewer,
// bigger writes (nats-server's flush coalescing).
//
// A socket that does not take everything (its peer reads slowly) gets a
// flusher goroutine, which calls Conn.Flush to write the rest, waiting for the
// socket within the write timeout, and reports on the hand-off channel; the
// client's new messages wait in its queue meanwhile and go in the next write
// after the report. A flusher only waits on its socket: an idle or keeping-up
// client has its reader goroutine and nothing else.
//
// The loop may write to a socket only because nothing on a connection waits
// for the socket under coder/websocket's write lock: the server's cork takes
// every frame, control frames of other goroutines included, and keeps what
// the socket does not take for a flusher or its own drain goroutine.
//
// # Invariants
//
//  1. Only the loop goroutine reads or writes Hub maps, Client.subs,
//     Client.pending, dirty, flushing and the counters.
//  2. At most one write per client is out: the loop writes only to a client
//     without a flusher, so Conn.Write and Conn.Flush never run concurrently
//     for one client and messages keep their queue order: for one client, a
//     partition's records arrive in offset order and a reply follows every
//     message queued before its request.
//  3. Conn.Write never waits for the socket, so the loop never does.
//  4. The queue limit counts pending plus the write being flushed. Past it the
//     client is dropped from the index at once (no more work for it) and
//     Conn.Overflow tells the server to close it with 1008 "slow".
//  5. Unregister returns only after the loop has forgotten the client; after
//     that no flusher is started for it, so Client.Wait cannot miss one.
//  6. A record reaches a client once even when it is subscribed to both the
//     record's channel and its topic wildcard (a per-broadcast sequence mark).
package hub
