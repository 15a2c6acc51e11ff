// Package protocol holds the client protocol of docs/PROTOCOL.md: parsing client
// requests, validating channel names, mapping Kafka records to channels, and
// encoding replies and messages into their final wire bytes. Message
// (message.go) is the one line type every part shares: the Kafka consumer
// builds it, the hub queues it, the server writes it.
//
// Messages are encoded once per Kafka record and the resulting bytes are shared by
// every recipient, so nothing here is ever called per connection on the broadcast path.
package protocol
