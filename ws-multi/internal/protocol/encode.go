package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is the part of a Kafka record the protocol needs.
type Record struct {
	// Channel is the channel the record is delivered on (RecordChannel).
	Channel   string
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Value     []byte
}

// EncodeRecord builds the "message" line of a record once, in its final wire form.
func EncodeRecord(r Record) *Message {
	b := make([]byte, 0, 96+len(r.Channel)+len(r.Topic)+len(r.Value))
	b = appendPosition(append(b, `{"op":"message"`...), r)
	b = append(b, `,"data":`...)
	b = appendValue(b, r.Value)
	return r.message(append(b, '}'))
}

// EncodeSkipped builds the "skipped" line sent in place of a record that is not delivered
// (reason "too_large": its value is longer than WS_MAX_RECORD_BYTES); size is the value's
// length in bytes. It routes like the record's message.
func EncodeSkipped(r Record, reason string, size int) *Message {
	b := make([]byte, 0, 128+len(r.Channel)+len(r.Topic)+len(reason))
	b = appendPosition(append(b, `{"op":"skipped"`...), r)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(size), 10)
	return r.message(append(b, '}'))
}

// appendPosition appends the channel, topic, partition, offset and ts fields of r.
func appendPosition(b []byte, r Record) []byte {
	b = append(b, `,"channel":`...)
	b = appendString(b, r.Channel)
	b = append(b, `,"topic":`...)
	b = appendString(b, r.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"ts":`...)
	return strconv.AppendInt(b, r.Timestamp.UnixMilli(), 10)
}

// message wraps an encoded line of r with its routing fields.
func (r Record) message(data []byte) *Message {
	return &Message{
		Channel:   r.Channel,
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Wire:      data,
		Time:      r.Timestamp,
	}
}

// appendValue embeds a record value: compacted when it is valid JSON (which also removes
// every raw newline, keeping the message one line), a JSON string otherwise, null when empty.
// Invalid UTF-8 is never embedded raw: text frames must be valid UTF-8, and appendString
// replaces bad bytes with U+FFFD.
func appendValue(b, value []byte) []byte {
	if len(value) == 0 {
		return append(b, "null"...)
	}
	if utf8.Valid(value) {
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, value); err == nil {
			return buf.Bytes()
		}
	}
	// b still has its length: whatever json.Compact wrote past it is overwritten.
	return appendString(b, string(value))
}

// Reply encodes a subscribed or unsubscribed reply.
func Reply(op Op, id string, hasID bool, channels []string) *Message {
	b := make([]byte, 0, 64)
	if op == OpSubscribe {
		b = append(b, `{"op":"subscribed"`...)
	} else {
		b = append(b, `{"op":"unsubscribed"`...)
	}
	b = appendID(b, id, hasID)
	b = append(b, `,"channels":[`...)
	for i, ch := range channels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, ch)
	}
	b = append(b, "]}"...)
	return &Message{Wire: b}
}

// Pong encodes the reply to a ping.
func Pong(id string, hasID bool) *Message {
	b := append(make([]byte, 0, 32+len(id)), `{"op":"pong"`...)
	b = appendID(b, id, hasID)
	return &Message{Wire: append(b, '}')}
}

// ErrorReply encodes an error reply.
func ErrorReply(id string, hasID bool, code, message string) *Message {
	b := append(make([]byte, 0, 48+len(id)+len(code)+len(message)), `{"op":"error"`...)
	b = appendID(b, id, hasID)
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	return &Message{Wire: append(b, '}')}
}

func appendID(b []byte, id string, hasID bool) []byte {
	if !hasID {
		return b
	}
	b = append(b, `,"id":`...)
	return appendString(b, id)
}
