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
//   - writer goroutines report a written batch and ask for the next one on the
//     hand-off channel.
//
// The loop takes control events first (they are few: readers are
// rate-limited), so a record flood cannot delay a registration or an
// unsubscribe. Between hand-offs and records it chooses fairly, taking every
// waiting hand-off at once and one record at a time: under overload a record's
// fan-out alternates with up to 1024 hand-offs, so Kafka input is not starved
// by busy writers nor writers by Kafka, and batches grow with the load. All
// three channels are bounded; the sizes are justified in hub.go.
//
// There is no mutex on the broadcast path: broadcast looks the record's channel
// up in a map, walks a slice of subscribers, and appends the same *Message to
// each subscriber's pending slice. A record is encoded once, by the Kafka
// goroutine, into its final wire bytes; recipients share them.
//
// # Writers on demand
//
// An idle client has a reader goroutine and nothing else: no writer goroutine
// and no buffered channel of messages. When the loop queues the first message
// for a client it starts a writer goroutine and hands it the whole pending
// slice. The writer writes it (the server batches it into frames), then sends
// a hand-off request; the loop answers on the client's batch channel with the
// pending slice that has built up meanwhile (and keeps the writer's old slice,
// cleared, for the next messages) or with nil when the queue is empty, and the
// writer ends. The swap happens once per batch, not per message.
//
// # Invariants
//
//  1. Only the loop goroutine reads or writes Hub maps, Client.subs,
//     Client.pending/spare and the counters; writers touch only the batch they
//     were handed, which the loop no longer references until it is returned.
//  2. At most one batch per client is outstanding (handed out and not yet
//     reported), so Conn.Write is never called concurrently for one client and
//     messages keep their queue order: for one client, a partition's records
//     arrive in offset order and a reply follows every message queued before
//     its request.
//  3. A writer that was answered nil may still be alive when the loop starts
//     its successor. Either may take either answer: both only wait on the
//     batch channel, and invariant 2 still holds because the loop hands out a
//     batch only when none is outstanding. The channel's size (2) keeps the loop
//     from waiting in that race; at worst it waits for a writer that is
//     already blocked receiving.
//  4. The queue limit counts pending plus the batch being written. Past it the
//     client is dropped from the index at once (no more work for it) and
//     Conn.Overflow tells the server to close it with 1008 "slow"; the loop
//     never waits for a socket.
//  5. Unregister returns only after the loop has forgotten the client; after
//     that no writer is started for it, so Client.Wait cannot miss one.
//  6. A record reaches a client once even when it is subscribed to both the
//     record's channel and its topic wildcard (a per-broadcast sequence mark).
package hub
