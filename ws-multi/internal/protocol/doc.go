// This file is duplicated from ws-single (internal/protocol/doc.go) on purpose: the variants
// share the protocol package.

// Package protocol holds the client protocol of docs/PROTOCOL.md: parsing client requests,
// validating channel names, mapping Kafka records to channels, and encoding every
// server-to-client line (replies and Kafka record messages) into its final wire bytes.
// Message (message.go) is the one line type every part shares: the Kafka consumer builds
// it, the hub queues it, the server writes it.
//
// It knows nothing about connections or Kafka clients: everything in it is a pure function
// that the fuzz target and table tests drive directly. Messages are encoded once per Kafka
// record and the resulting bytes are shared by every recipient, so nothing here is ever
// called per connection on the broadcast path.
package protocol
