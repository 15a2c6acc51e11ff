// This file is duplicated in ws-single (internal/server/doc.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

// Package server is the HTTP side of a variant (ws-single or ws-multi, the
// same code): the WebSocket endpoint with its admission checks (upgrade.go),
// one reader goroutine per connection (read.go: requests, the rate limit that
// WebSocket pings count against, UTF-8, the payload deadline), the socket
// writes the hub makes from the goroutine that owns the client, ws-single's
// loop or one of ws-multi's shards (write.go: hub.Conn, batching into pooled
// frame buffers, corking, chunks; the write timeout of flushes), keep-alive
// pings (ping.go: a runtime timer per connection, no goroutine while idle), the
// close of every connection (conn.go, reason.go: one table maps a typed Reason
// to its metric label and close frame, sent with a bounded linger), health,
// readiness, metrics and the demo page (http.go), and the ordered drain on
// shutdown (server.go). Nothing here depends on how the hub is built inside.
//
// The HTTP server keeps connections that are not WebSocket connections in
// check (http.go, listener.go): a header timeout and size, an idle timeout,
// a cap per source address applied at accept, Connection: close on every
// refused upgrade, and accept errors counted.
//
// A connection's goroutines: its reader, which owns it and ends it
// (conn.serve); a flusher only while its socket is full (started by the hub);
// a close handshake, a ping round trip, a write-timeout callback or the
// rate-limit close while one runs (counted in conn.bg). The reason a
// connection ends is an atomic, the first one set wins; conn.mu guards the
// rest of the lifecycle and is never taken per message.
//
// main builds the parts (the hub, the Kafka consumer, CPU admission) and hands
// them over in Deps. Server.Serve runs them: it starts the hub, the consumer
// and the background runners, serves until its context ends, closes every
// client with 1001 "shutdown" in parallel (the server keeps its own set of
// live connections for this; the hub knows no sockets), then stops the HTTP
// server, the consumer, the background runners and the hub, in that order, so
// the hub is still there while clients unregister.
package server
