// Package server is the HTTP side of ws-single: the WebSocket endpoint with
// its admission checks, one reader goroutine per connection, the socket
// writes the hub loop makes (batching, corking; the write timeout of flushes), pings,
// health and readiness, metrics and the demo page, and the ordered drain on
// shutdown.
//
// Server.Run owns the hub loop and the Kafka consumer: it starts them, serves
// until its context ends, closes every client with 1001 "shutdown" in
// parallel, then stops the consumer and the hub, in that order, so the hub is
// still there while clients unregister.
package server
