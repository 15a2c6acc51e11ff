// This file is duplicated from ws-single (internal/protocol/message.go) on purpose: the
// variants share the one message type.

package protocol

import "time"

// Message is one line for clients: a Kafka record's "message" (or "skipped")
// line or a reply. Immutable once published: every recipient shares it.
type Message struct {
	Channel   string // routes a record; empty for a reply
	Topic     string // empty for a reply
	Partition int32  // the record's place in Kafka (resume will need it)
	Offset    int64
	Wire      []byte    // the JSON line, no trailing newline
	Time      time.Time // the Kafka record timestamp; zero for a reply
}
