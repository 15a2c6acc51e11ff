package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// reply is the JSON shape of every reply; field order is the documented one.
type reply struct {
	Op       string   `json:"op"`
	ID       *string  `json:"id,omitempty"`
	Code     string   `json:"code,omitempty"`
	Message  string   `json:"message,omitempty"`
	Channels []string `json:"channels,omitempty"`
}

func encodeReply(r reply) []byte {
	// Marshal cannot fail for this type: strings and a string slice only.
	b, _ := json.Marshal(r)
	return b
}

func idPtr(id string, hasID bool) *string {
	if !hasID {
		return nil
	}
	return &id
}

// EncodeReply is the reply to a valid request: "subscribed", "unsubscribed" or "pong".
func EncodeReply(req Request) []byte {
	r := reply{ID: idPtr(req.ID, req.HasID)}
	switch req.Op {
	case OpSubscribe:
		r.Op, r.Channels = "subscribed", req.Channels
	case OpUnsubscribe:
		r.Op, r.Channels = "unsubscribed", req.Channels
	default:
		r.Op = "pong"
	}
	return encodeReply(r)
}

// EncodeError is the "error" reply for e.
func EncodeError(e *Error) []byte {
	return encodeReply(reply{Op: "error", ID: idPtr(e.ID, e.HasID), Code: e.Code, Message: e.Message})
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
	b = append(b, `{"op":"message","channel":`...)
	b = appendString(b, rec.Channel)
	b = append(b, `,"topic":`...)
	b = appendString(b, rec.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(rec.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, rec.Offset, 10)
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, rec.Timestamp.UnixMilli(), 10)
	b = append(b, `,"data":`...)
	b = appendData(b, rec.Value)
	return append(b, '}')
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

// appendString appends s as a JSON string. Plain ASCII (the usual channel and
// topic) is copied directly; anything else goes through encoding/json, which
// escapes control characters and replaces invalid UTF-8.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
