// Package load is the load generator behind `loadtest connect`, `loadtest broadcast` and the
// hidden `loadtest worker`: it opens many WebSocket connections at a ramp rate, subscribes
// them to channels, optionally publishes timestamped records to Kafka at fixed rates, and
// measures handshakes, delivery latency, loss, duplicates and reordering, beside the
// server's own /metrics.
//
// A run is described by a Scenario (every figure in a report comes with the scenario that
// produced it). Connections are owned by groups: one in-process group, or one per worker
// process when a single process cannot hold them all (open-file limit). Workers are this
// same binary re-executed as `loadtest worker`; they read their plan as one JSON line on
// stdin and stream progress and their final result back as JSON lines on stdout.
//
// With a token (Scenario.Token, the auth contract of issue 15) a connection sends its auth
// request and its subscribe back to back and counts as subscribed once both replies came;
// without one it sends the subscribe alone, as before. The authed reply is looked for only
// among lines frame.Scan does not recognize, so messages take the same path either way.
//
// Throttled clients (Scenario.ThrottleFraction, issue 16) read through a token bucket
// (throttle.go) and are counted apart from the others (throttled.go): a group with any runs a
// sampler goroutine that reads, every 250 ms, the sent_ns of the newest value each holds per
// channel (atomics their readers store), into histograms only it touches until the end.
//
// Concurrency: a group runs one goroutine per connection (its reader) plus the ramp; the
// group's run method owns them and waits for them. Readers record into one of shardCount
// shards, taking the shard's lock once per frame; a reader that must also touch the group's
// counters (subscribed, failures) takes group.mu inside the shard lock. Lock order:
// shard.mu, then group.mu; never the reverse. A connState is touched only by its own
// reader until every reader has ended, then by result.
package load
