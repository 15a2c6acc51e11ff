// Package protocol holds the client protocol of docs/PROTOCOL.md: parsing of client requests,
// channel names and their rules, and the encoding of every server-to-client line (replies and
// Kafka record messages). It knows nothing about connections or Kafka clients, so everything in
// it is a pure function that the fuzz target and table tests can drive directly.
package protocol
