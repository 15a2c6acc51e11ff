package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// EncodeReply is the reply to a valid request, in the documented field order:
// {"op":"subscribed","id":…,"channels":[…]}, the same for "unsubscribed", and
// {"op":"pong","id":…}; the id only when the request had one.
func EncodeReply(req Request) []byte {
	b := make([]byte, 0, 48+len(req.ID)+16*len(req.Channels))
	switch req.Op {
	case OpSubscribe, OpUnsubscribe:
		if req.Op == OpSubscribe {
			b = append(b, `{"op":"subscribed"`...)
		} else {
			b = append(b, `{"op":"unsubscribed"`...)
		}
		b = appendID(b, req.ID, req.HasID)
		b = append(b, `,"channels":[`...)
		for i, ch := range req.Channels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, ch)
		}
		b = append(b, ']')
	default:
		b = append(b, `{"op":"pong"`...)
		b = appendID(b, req.ID, req.HasID)
	}
	return append(b, '}')
}

// EncodeError is the "error" reply for e: {"op":"error","id":…,"code":…,"message":…}.
func EncodeError(e *Error) []byte {
	b := append(make([]byte, 0, 48+len(e.ID)+len(e.Code)+len(e.Message)), `{"op":"error"`...)
	b = appendID(b, e.ID, e.HasID)
	b = append(b, `,"code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	return append(b, '}')
}

func appendID(b []byte, id string, hasID bool) []byte {
	if !hasID {
		return b
	}
	b = append(b, `,"id":`...)
	return appendString(b, id)
}

// Record is the part of a Kafka record that goes on the wire.
type Record struct {
	Channel   string
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Value     []byte
}

// EncodeMessage returns the final wire bytes of the "message" line for rec, a
// single line of JSON. It is called once per record; every recipient shares the result.
func EncodeMessage(rec Record) []byte {
	b := make([]byte, 0, 96+len(rec.Channel)+len(rec.Topic)+len(rec.Value))
	b = appendRecord(append(b, `{"op":"message"`...), rec)
	b = append(b, `,"data":`...)
	b = appendData(b, rec.Value)
	return append(b, '}')
}

// EncodeSkipped returns the "skipped" line sent in place of a record that is not
// delivered, with the same routing fields as its message, the reason (e.g.
// "too_large") and the size of the record value in bytes:
// {"op":"skipped","channel":…,"topic":…,"partition":…,"offset":…,"ts":…,"reason":…,"size":…}.
func EncodeSkipped(rec Record, reason string, size int) []byte {
	b := make([]byte, 0, 128+len(rec.Channel)+len(rec.Topic)+len(reason))
	b = appendRecord(append(b, `{"op":"skipped"`...), rec)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(size), 10)
	return append(b, '}')
}

// appendRecord appends the routing fields of a record line, after its op.
func appendRecord(b []byte, rec Record) []byte {
	b = append(b, `,"channel":`...)
	b = appendString(b, rec.Channel)
	b = append(b, `,"topic":`...)
	b = appendString(b, rec.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(rec.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, rec.Offset, 10)
	b = append(b, `,"ts":`...)
	return strconv.AppendInt(b, rec.Timestamp.UnixMilli(), 10)
}

// appendData embeds a record value: compacted when it is valid JSON (json.Compact
// also drops the newlines that would break the one-message-per-line framing),
// otherwise as a JSON string, and null when empty.
func appendData(b, value []byte) []byte {
	if len(value) == 0 {
		return append(b, "null"...)
	}
	// json.Valid does not check UTF-8 inside strings; browsers would mangle it.
	if utf8.Valid(value) && json.Valid(value) {
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, value); err == nil {
			return buf.Bytes()
		}
	}
	return appendString(b, string(value))
}
