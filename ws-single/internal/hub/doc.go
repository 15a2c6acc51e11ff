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
// for a client it starts a writer goroutine (once a writer slot is free, see
// below) and hands it the whole pending slice. The writer writes it (the server batches it into frames), then sends
// a hand-off request; the loop answers on the client's batch channel with the
// pending slice that has built up meanwhile (and keeps the writer's old slice,
// cleared, for the next messages) or with nil when the queue is empty, and the
// writer ends. The swap happens once per batch, not per message.
//
// # Writer slots
//
// On one P the runtime's run queue is first in, first out: a goroutine made
// runnable waits for every goroutine queued before it. With a writer per busy
// client runnable at once (thousands under load), each of the several
// goroutine hops of sarama's fetch cycle, every reader and every ping timer
// waited behind all of them: records reached the hub hundreds of milliseconds
// late while the hub itself had nothing queued. So at most maxWriters batches
// (128) are out at a time. A client that gets messages while every slot is
// taken joins a FIFO of clients waiting for one, and its queue keeps growing
// into a bigger batch meanwhile; a writer whose client has more while others
// wait parks, its hand-off unanswered, at the end of that FIFO (it is answered
// when the client's turn comes, or nil if the client goes away first). A slot
// frees when its writer reports, or when its batch has been out for longer
// than stallAfter (20 ms: a socket that is not draining), checked by a timer
// that runs only while batches are out; so slow clients cannot hold every
// slot, and their write timeout and queue limit still deal with them.
//
// # Invariants
//
//  1. Only the loop goroutine reads or writes Hub maps, Client.subs,
//     Client.pending/spare and the counters; writers touch only the batch they
//     were handed, which the loop no longer references until it is returned.
//  2. At most one batch per client is outstanding (handed out and not yet
//     reported; a stalled batch that stopped counting in a writer slot is still
//     outstanding), so Conn.Write is never called concurrently for one client and
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
//  7. Writer slots: at most maxWriters counted batches are out, and a free
//     slot means nobody waits for one (after every event the loop hands free
//     slots to the FIFO, oldest first). A client is in the FIFO at most once
//     (Client.queued) and never while a batch of its is out.
package hub
