// This file is duplicated from ws-multi (internal/protocol/conflate.go) on purpose: the
// variants share the protocol, the same conflation lines in both.

package protocol

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// ConflateMode is how a subscription conflates (docs/PROTOCOL.md, Conflation).
type ConflateMode uint8

const (
	// ConflateNone delivers every record: the default.
	ConflateNone ConflateMode = iota
	// ConflateBehind keeps the latest record per key while the client is behind.
	ConflateBehind
	// ConflateInterval delivers at most one record per key every Interval, the latest.
	ConflateInterval
)

// Conflate is a subscribe's "conflate": its mode and, for ConflateInterval, the interval.
// The zero value is no conflation.
type Conflate struct {
	Mode     ConflateMode
	Interval time.Duration
}

// ConflateIntervals are the allowed intervals of "conflate":{"ms":N}, ascending: a small
// fixed set, so each topic partition has at most this many interval buckets. Read-only.
var ConflateIntervals = []time.Duration{
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second,
}

// ConflateTick is the clock of interval conflation: every allowed interval is a multiple of
// it, and an interval ends at most one tick late.
const ConflateTick = 50 * time.Millisecond

const (
	msgConflateType     = `conflate must be "behind" or {"ms":N}`
	msgConflateInterval = "conflate.ms must be one of 100, 250, 500, 1000, 2000, 5000"
)

// parseConflate reads a subscribe's "conflate": "behind" or {"ms":N}, N an allowed interval.
func parseConflate(raw json.RawMessage) (Conflate, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var mode string
		if json.Unmarshal(raw, &mode) != nil || mode != "behind" {
			return Conflate{}, &Error{Code: CodeInvalidRequest, Message: msgConflateType}
		}
		return Conflate{Mode: ConflateBehind}, nil
	}
	var fields map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &fields) != nil {
		return Conflate{}, &Error{Code: CodeInvalidRequest, Message: msgConflateType}
	}
	msRaw, ok := fields["ms"]
	if !ok {
		return Conflate{}, &Error{Code: CodeInvalidRequest, Message: msgConflateType}
	}
	var ms int64
	if json.Unmarshal(msRaw, &ms) != nil {
		return Conflate{}, &Error{Code: CodeInvalidRequest, Message: msgConflateInterval}
	}
	d := time.Duration(ms) * time.Millisecond
	if !slices.Contains(ConflateIntervals, d) {
		return Conflate{}, &Error{Code: CodeInvalidRequest, Message: msgConflateInterval}
	}
	return Conflate{Mode: ConflateInterval, Interval: d}, nil
}

// ConflateMismatch is the invalid_request error for an interval subscription to a channel of
// topic while the client holds channels of that topic at another interval, or none: one
// partition's records keep their order only through one interval.
func ConflateMismatch(topic string, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeInvalidRequest,
		Message: "conflate of " + quoteEcho(topic) + " channels must be the same interval on a connection",
		ID:      id, HasID: hasID,
	}
}

// appendConflate appends a reply's ,"conflate":… echo; nothing for ConflateNone.
func appendConflate(b []byte, c Conflate) []byte {
	switch c.Mode {
	case ConflateBehind:
		return append(b, `,"conflate":"behind"`...)
	case ConflateInterval:
		b = append(b, `,"conflate":{"ms":`...)
		b = strconv.AppendInt(b, c.Interval.Milliseconds(), 10)
		return append(b, '}')
	}
	return b
}

// EncodeConflated builds the line announcing that skipped records of key (m's channel and
// partition) were left out on purpose before m, the last of them at offset to:
// {"op":"conflated","channel":…,"topic":…,"partition":…,"skipped":N,"to":…}. It is a line
// for one client (KindReply) that names its key in Channel and Partition.
func EncodeConflated(m *Message, skipped int, to int64) *Message {
	b := AppendConflated(make([]byte, 0, 112+len(m.Channel)+len(m.Topic)), m, skipped, to)
	return &Message{Channel: m.Channel, Partition: m.Partition, Wire: b}
}

// AppendConflated appends EncodeConflated's line to b, so a client's queue can reuse one
// line per key.
func AppendConflated(b []byte, m *Message, skipped int, to int64) []byte {
	b = append(b, `{"op":"conflated","channel":`...)
	b = appendString(b, m.Channel)
	b = append(b, `,"topic":`...)
	b = appendString(b, m.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(m.Partition), 10)
	b = append(b, `,"skipped":`...)
	b = strconv.AppendInt(b, int64(skipped), 10)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, to, 10)
	return append(b, '}')
}

// WithConflated returns a copy of record m whose line carries ,"conflated":skipped as its
// last field: m replaced skipped older records of its key at an interval. The copy is
// shared by the interval's subscribers; m itself is never changed (others share it).
func WithConflated(m *Message, skipped int) *Message {
	b := make([]byte, 0, len(m.Wire)+24)
	b = append(b, m.Wire[:len(m.Wire)-1]...) // without the closing brace
	b = append(b, `,"conflated":`...)
	b = strconv.AppendInt(b, int64(skipped), 10)
	out := *m
	out.Wire = append(b, '}')
	return &out
}
