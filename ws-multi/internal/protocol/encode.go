// This file is duplicated from ws-single (internal/protocol/encode.go) on purpose: the variants
// share the protocol, every line the server writes is the same bytes in both.

package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is the part of a Kafka record that goes on the wire.
type Record struct {
	// Channel is the channel the record is delivered on (RecordChannel).
	Channel   string
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Value     []byte
}

// EncodeRecord builds the "message" line of a record once, in its final wire form, with the
// record's routing fields: every recipient shares it.
func EncodeRecord(r Record) *Message {
	return r.message(recordLine(r))
}

// recordLine returns the wire bytes of r's "message" line, a single line of JSON:
// {"op":"message","channel":…,"topic":…,"partition":…,"offset":…,"ts":…,"data":…}.
func recordLine(r Record) []byte {
	// 128: the fixed fields with the longest partition, offset and ts (122 bytes), so the line
	// is built in one allocation (a compacted value is never longer than the record's).
	b := make([]byte, 0, 128+len(r.Channel)+len(r.Topic)+len(r.Value))
	b = appendPosition(append(b, `{"op":"message"`...), r)
	b = append(b, `,"data":`...)
	b = appendValue(b, r.Value)
	return append(b, '}')
}

// EncodeSkipped builds the "skipped" line sent in place of a record that is not delivered,
// with the same routing fields as its message, the reason (e.g. "too_large": its value is
// longer than WS_MAX_RECORD_BYTES) and size, the value's length in bytes:
// {"op":"skipped","channel":…,"topic":…,"partition":…,"offset":…,"ts":…,"reason":…,"size":…}.
func EncodeSkipped(r Record, reason string, size int) *Message {
	b := make([]byte, 0, 160+len(r.Channel)+len(r.Topic)+len(reason))
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
func (r Record) message(wire []byte) *Message {
	return &Message{
		Kind:      KindRecord,
		Channel:   r.Channel,
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Wire:      wire,
		Time:      r.Timestamp,
	}
}

// appendValue embeds a record value: compacted when it is valid JSON (which also removes
// every raw newline, keeping the message one line), a JSON string otherwise, null when empty.
// Invalid UTF-8 is never embedded raw (json.Compact does not check it inside strings, and
// text frames must be valid UTF-8): such a value becomes a string, where appendString
// replaces bad bytes with U+FFFD. json.Compact validates as it goes, so a value is scanned
// once, not validated and then compacted; a value that cannot be JSON by its first byte
// (plain text) skips it, and the allocations of its syntax error.
func appendValue(b, value []byte) []byte {
	if len(value) == 0 {
		return append(b, "null"...)
	}
	if utf8.Valid(value) && mayBeJSON(value) {
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, value); err == nil {
			return buf.Bytes()
		}
	}
	// b still has its length: whatever json.Compact wrote past it is overwritten.
	return appendString(b, string(value))
}

// mayBeJSON reports whether value's first byte after JSON whitespace can start a JSON value.
func mayBeJSON(value []byte) bool {
	for _, c := range value {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[', '"', '-', 't', 'f', 'n', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return true
		}
		return false
	}
	return false
}

// EncodeReply builds the reply to a valid request: {"op":"subscribed"|"unsubscribed","id":…,
// "channels":[…]} for a subscribe (with its "conflate" echoed) or unsubscribe, {"op":"pong","id":…} for a ping; the id only
// when the request had one.
func EncodeReply(req Request) *Message {
	if req.Op == OpSubscribe || req.Op == OpUnsubscribe {
		b := appendChannels(make([]byte, 0, 48+len(req.ID)+16*len(req.Channels)), req.Op, req.ID, req.HasID, req.Channels)
		if req.Op == OpSubscribe && req.Conflate.Mode != ConflateNone {
			b = append(appendConflate(b[:len(b)-1], req.Conflate), '}')
		}
		return &Message{Wire: b}
	}
	return &Message{Wire: appendPong(make([]byte, 0, 32+len(req.ID)), req.ID, req.HasID)}
}

// EncodeError builds the "error" reply for e: {"op":"error","id":…,"code":…,"message":…}.
// With a Channel the reply names it: {"op":"error","id":…,"code":…,"channel":…,"message":…}.
func EncodeError(e *Error) *Message {
	b := make([]byte, 0, 48+len(e.ID)+len(e.Code)+len(e.Channel)+len(e.Message))
	return &Message{Wire: appendError(b, e.ID, e.HasID, e.Code, e.Channel, e.Message)}
}

// EncodeAuthed builds the reply to a valid token: {"op":"authed","id":…,"exp":…}, exp in unix
// seconds; the id only when the request had one (none for a token from the handshake).
func EncodeAuthed(id string, hasID bool, exp int64) *Message {
	b := append(make([]byte, 0, 48+len(id)), `{"op":"authed"`...)
	b = appendID(b, id, hasID)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, exp, 10)
	return &Message{Wire: append(b, '}')}
}

// EncodeRevoked builds the line for channels a refreshed token no longer allows, unsubscribed
// by the server: {"op":"unsubscribed","channels":[…],"reason":…}.
func EncodeRevoked(channels []string, reason string) *Message {
	b := appendChannels(make([]byte, 0, 64+16*len(channels)), OpUnsubscribe, "", false, channels)
	b = append(b[:len(b)-1], `,"reason":`...)
	b = appendString(b, reason)
	return &Message{Wire: append(b, '}')}
}

func appendChannels(b []byte, op Op, id string, hasID bool, channels []string) []byte {
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
	return append(b, "]}"...)
}

func appendPong(b []byte, id string, hasID bool) []byte {
	b = append(b, `{"op":"pong"`...)
	b = appendID(b, id, hasID)
	return append(b, '}')
}

func appendError(b []byte, id string, hasID bool, code, channel, message string) []byte {
	b = append(b, `{"op":"error"`...)
	b = appendID(b, id, hasID)
	b = append(b, `,"code":`...)
	b = appendString(b, code)
	if channel != "" {
		b = append(b, `,"channel":`...)
		b = appendString(b, channel)
	}
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	return append(b, '}')
}

func appendID(b []byte, id string, hasID bool) []byte {
	if !hasID {
		return b
	}
	b = append(b, `,"id":`...)
	return appendString(b, id)
}
