// This file is duplicated from ws-single (internal/protocol/message.go) on purpose: the
// variants share the one message type.

package protocol

import "time"

// Kind says how the hub routes a Message.
type Kind uint8

const (
	// KindReply is a reply or a line for one client: routed by whoever queues it.
	KindReply Kind = iota
	// KindRecord is a Kafka record's "message" or "skipped" line: routed by Channel to its
	// subscribers and those of its topic's wildcard.
	KindRecord
	// KindGap is a "gap" line: it goes to every subscriber of any channel of Topic.
	KindGap
)

// Message is one line for clients: a Kafka record's "message" (or "skipped")
// line, a gap or a reply. Immutable once published: every recipient shares it.
type Message struct {
	Kind      Kind
	Channel   string    // routes a record; empty otherwise
	Topic     string    // a record's or a gap's topic; empty for a reply
	Partition int32     // a record's or a gap's place in Kafka
	Offset    int64     // a record's offset; a gap's last missing offset
	Wire      []byte    // the JSON line, no trailing newline
	Time      time.Time // the Kafka record timestamp; zero for a reply
}
