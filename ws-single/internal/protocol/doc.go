// Package protocol holds the client protocol of docs/PROTOCOL.md: parsing client
// requests, validating channel names, mapping Kafka records to channels, and
// encoding replies and messages into their final wire bytes.
//
// Messages are encoded once per Kafka record and the resulting bytes are shared by
// every recipient, so nothing here is ever called per connection on the broadcast path.
package protocol
