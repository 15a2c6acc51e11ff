// Package server is the HTTP side of ws-single: the WebSocket endpoint with
// its admission checks, one reader goroutine per connection (read.go: requests,
// the rate limit that WebSocket pings count against, UTF-8, the payload
// deadline), the socket writes the hub loop makes (write.go: batching, corking,
// chunks; the write timeout of flushes), pings, the close of every connection
// (reason.go: one close frame per disconnect reason, sent with a bounded
// linger), health and readiness, metrics and the demo page, and the ordered
// drain on shutdown.
//
// The HTTP server keeps connections that are not WebSocket connections in
// check (server.go, listener.go): a header timeout and size, an idle timeout,
// a cap per source address applied at accept, Connection: close on every
// refused upgrade, and accept errors counted.
//
// Server.Run owns the hub loop and the Kafka consumer: it starts them, serves
// until its context ends, closes every client with 1001 "shutdown" in
// parallel, then stops the consumer and the hub, in that order, so the hub is
// still there while clients unregister.
package server
