// Package server is the HTTP side of ws-multi: the WebSocket endpoint with its admission
// checks (upgrade.go), one reader goroutine per connection (read.go: requests, the rate
// limit that WebSocket pings count against, UTF-8, the payload deadline), the socket writes
// the hub's shards make (write.go: batching into pooled frame buffers, corking, chunks; the
// write timeout of flushes), keep-alive pings on a per-connection runtime timer (ping.go),
// the lifecycle and close of every connection (conn.go, reason.go: one table maps each
// disconnect reason to its metric label and close frame, sent with a bounded linger),
// health and readiness, metrics and the demo page (http.go), and the ordered drain on
// shutdown (server.go).
//
// What a hostile client meets (docs/PROTOCOL.md): before the upgrade, a per-address cap on
// connections that are not WebSocket connections, an idle timeout, a header timeout and a
// header size limit (listener.go, server.go); every refused upgrade closes its socket. After
// it: one token bucket for requests and WebSocket pings, whose exhaustion pays the replies
// owed (Hub.Sync) and then closes; a read deadline on every frame's payload; UTF-8 text; a
// cork that bounds what waits for the socket (cork.go). Every server close frame is sent
// with a bounded linger, so a client still sending receives the code.
//
// A connection's goroutines: its reader, which owns it and ends it (conn.serve); a flusher
// only while its socket is full (started by the hub); a close handshake, a ping round trip
// or the rate-limit close while one runs. conn.mu guards the lifecycle (closed, the reason:
// the first one decided wins) and is never taken per message.
//
// Server.Serve owns the hub, the Kafka consumer and the background runners: it starts
// them, serves until its context ends, closes every live connection (the server's own set,
// not the hub's) with 1001 "shutdown" in parallel, waits for them up to the shutdown
// timeout, then stops the consumer, the background runners and the hub, in that order, so
// the hub is still there while clients unregister.
package server
