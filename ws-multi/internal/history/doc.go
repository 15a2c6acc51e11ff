// This file is duplicated from ws-single (internal/history/doc.go) on purpose: the variants
// share the history.

// Package history keeps, per Kafka partition, the recent records' messages already encoded
// (the bytes clients get), so a client that comes back with its positions is served from
// memory on any instance, and plans a resume: what to replay from memory, what to read from
// Kafka, and what cannot be recovered.
//
// # Ownership
//
// A partition's ring has one writer, the Kafka goroutine of that partition, which appends a
// record's message before it publishes it to the hub: so whatever the hub (ws-single's
// loop, or a ws-multi shard) has fanned out of a partition is already in the ring, and a
// resume served by the hub replays (position, frontier) from the ring and is live from the
// frontier with no gap and no duplicate, the frontier being the hub's own next offset of
// that partition. Readers are the hub goroutines serving resumes, rarely: each ring has a
// read-write mutex taken once per record by its writer (uncontended: one writer, readers
// only on resume) and once per resume by a reader. The hub's broadcast path never takes it.
//
// # Bounds
//
// A ring holds at most Config.Records records and Config.Bytes bytes of wire lines, and
// drops records older than Config.MaxAge on each append and each Trim. Its coverage is
// explicit: it holds every record from offset From on (From moves past each dropped
// record); a resume after a position p is served from memory only when p+1 >= From.
package history
