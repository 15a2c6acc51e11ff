// Package server is the HTTP side of ws-single: the WebSocket endpoint with
// its admission checks (upgrade.go), one reader goroutine per connection
// (read.go: requests, the rate limit that WebSocket pings count against,
// UTF-8, the payload deadline), the socket writes the hub loop makes (write.go:
// hub.Conn, batching, corking, chunks; the write timeout of flushes), keep-alive
// pings (ping.go: a runtime timer per connection, no goroutine while idle), the
// close of every connection (conn.go, reason.go: one table maps a typed Reason
// to its metric label and close frame, sent with a bounded linger), health,
// readiness, metrics and the demo page (http.go), and the ordered drain on
// shutdown (server.go).
//
// The HTTP server keeps connections that are not WebSocket connections in
// check (http.go, listener.go): a header timeout and size, an idle timeout,
// a cap per source address applied at accept, Connection: close on every
// refused upgrade, and accept errors counted.
//
// main builds the parts (the hub, the Kafka consumer, CPU admission) and hands
// them over in Deps. Server.Serve runs them: it starts the hub, the consumer
// and the background runners, serves until its context ends, closes every
// client with 1001 "shutdown" in parallel (the server keeps its own set of
// live connections for this; the hub knows no sockets), then stops the HTTP
// server, the consumer, the background runners and the hub, in that order, so
// the hub is still there while clients unregister.
package server
