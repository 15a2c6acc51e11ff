// This file is duplicated from ws-single (internal/protocol/encode_test.go) on purpose: the
// variants share the protocol and its tests.

package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEncodeRecord(t *testing.T) {
	t.Parallel()
	ts := time.UnixMilli(1700000000123)
	tests := []struct {
		name   string
		rec    Record
		want   string
		wantCh string
	}{
		{
			name:   "json value compacted",
			rec:    Record{Channel: "trades:BTC-USD", Topic: "trades", Partition: 2, Offset: 1234, Timestamp: ts, Value: []byte("{ \"price\" : \"64123.5\",\n \"size\": 1 }")},
			want:   `{"op":"message","channel":"trades:BTC-USD","topic":"trades","partition":2,"offset":1234,"ts":1700000000123,"data":{"price":"64123.5","size":1}}`,
			wantCh: "trades:BTC-USD",
		},
		{
			name:   "non json value is a string",
			rec:    Record{Channel: "trades:k", Topic: "trades", Timestamp: ts, Value: []byte("hello \"world\"\n<b>")},
			want:   `{"op":"message","channel":"trades:k","topic":"trades","partition":0,"offset":0,"ts":1700000000123,"data":"hello \"world\"\n<b>"}`,
			wantCh: "trades:k",
		},
		{
			name:   "empty value is null, empty key is the topic",
			rec:    Record{Channel: "tickers", Topic: "tickers", Offset: 5, Timestamp: ts},
			want:   `{"op":"message","channel":"tickers","topic":"tickers","partition":0,"offset":5,"ts":1700000000123,"data":null}`,
			wantCh: "tickers",
		},
		{
			name:   "channel as given",
			rec:    Record{Channel: "trades:x", Topic: "trades", Timestamp: ts, Value: []byte("1")},
			want:   `{"op":"message","channel":"trades:x","topic":"trades","partition":0,"offset":0,"ts":1700000000123,"data":1}`,
			wantCh: "trades:x",
		},
		{
			name:   "invalid utf8 is replaced",
			rec:    Record{Channel: "t", Topic: "t", Timestamp: ts, Value: []byte("\"a\xffb\"")},
			want:   `{"op":"message","channel":"t","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":"\"a\ufffdb\""}`,
			wantCh: "t",
		},
		{
			name:   "json scalar",
			rec:    Record{Channel: "t", Topic: "t", Partition: 3, Offset: 7, Timestamp: ts, Value: []byte(" 42 ")},
			want:   `{"op":"message","channel":"t","topic":"t","partition":3,"offset":7,"ts":1700000000123,"data":42}`,
			wantCh: "t",
		},
		{
			name:   "channel escaped",
			rec:    Record{Channel: "t:a\"b\n", Topic: "t", Timestamp: ts, Value: []byte("1")},
			want:   `{"op":"message","channel":"t:a\"b\n","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":1}`,
			wantCh: "t:a\"b\n",
		},
		{
			name:   "invalid json is a string",
			rec:    Record{Channel: "t", Topic: "t", Timestamp: ts, Value: []byte(` {"a":1,}`)},
			want:   `{"op":"message","channel":"t","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":" {\"a\":1,}"}`,
			wantCh: "t",
		},
		{
			name:   "json literals",
			rec:    Record{Channel: "t", Topic: "t", Timestamp: ts, Value: []byte("\t[true, false,null, \"x\", -1.5e3]\n")},
			want:   `{"op":"message","channel":"t","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":[true,false,null,"x",-1.5e3]}`,
			wantCh: "t",
		},
		{
			name:   "whitespace value is a string",
			rec:    Record{Channel: "t", Topic: "t", Timestamp: ts, Value: []byte(" ")},
			want:   `{"op":"message","channel":"t","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":" "}`,
			wantCh: "t",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := EncodeRecord(tt.rec)
			if string(m.Wire) != tt.want {
				t.Errorf("EncodeRecord =\n %s\nwant\n %s", m.Wire, tt.want)
			}
			if !json.Valid(m.Wire) || strings.Contains(string(m.Wire), "\n") {
				t.Errorf("not one line of JSON: %q", m.Wire)
			}
			if m.Channel != tt.wantCh || m.Topic != tt.rec.Topic || m.Partition != tt.rec.Partition ||
				m.Offset != tt.rec.Offset || !m.Time.Equal(tt.rec.Timestamp) {
				t.Errorf("routing fields = %q %q %d %d %v", m.Channel, m.Topic, m.Partition, m.Offset, m.Time)
			}
		})
	}
}

func TestReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  *Message
		want string
	}{
		{name: "subscribed", got: EncodeReply(Request{Op: OpSubscribe, ID: "1", HasID: true, Channels: []string{"trades:BTC-USD", "tickers:*"}}), want: `{"op":"subscribed","id":"1","channels":["trades:BTC-USD","tickers:*"]}`},
		{name: "unsubscribed no id", got: EncodeReply(Request{Op: OpUnsubscribe, ID: "", HasID: false, Channels: []string{"a"}}), want: `{"op":"unsubscribed","channels":["a"]}`},
		{name: "pong", got: EncodeReply(Request{Op: OpPing, ID: "3", HasID: true}), want: `{"op":"pong","id":"3"}`},
		{name: "pong empty id", got: EncodeReply(Request{Op: OpPing, ID: "", HasID: true}), want: `{"op":"pong","id":""}`},
		{name: "error", got: EncodeError(&Error{ID: "1", HasID: true, Code: CodeInvalidChannel, Message: `channel "a b": invalid character ' '`}), want: `{"op":"error","id":"1","code":"invalid_channel","message":"channel \"a b\": invalid character ' '"}`},
		{name: "control characters escaped", got: EncodeReply(Request{Op: OpPing, ID: "a\x01\tb", HasID: true}), want: `{"op":"pong","id":"a\u0001\tb"}`},
		{name: "html characters not escaped", got: EncodeReply(Request{Op: OpPing, ID: "<a href='x'>&amp;</a>", HasID: true}), want: `{"op":"pong","id":"<a href='x'>&amp;</a>"}`},
		{name: "newlines and quotes escaped", got: EncodeReply(Request{Op: OpPing, ID: "a\r\n\"\\b", HasID: true}), want: `{"op":"pong","id":"a\r\n\"\\b"}`},
		{name: "invalid utf8 replaced", got: EncodeReply(Request{Op: OpPing, ID: "a\xffb\xc3", HasID: true}), want: `{"op":"pong","id":"a\ufffdb\ufffd"}`},
		{name: "DEL is not escaped", got: EncodeReply(Request{Op: OpPing, ID: "\x7f", HasID: true}), want: "{\"op\":\"pong\",\"id\":\"\x7f\"}"},
		{name: "error without id", got: EncodeError(&Error{ID: "", HasID: false, Code: CodeInvalidJSON, Message: "frame is not a JSON object"}), want: `{"op":"error","code":"invalid_json","message":"frame is not a JSON object"}`},
		{name: "error with invalid utf8 replaced", got: EncodeError(&Error{ID: "\xfe", HasID: true, Code: CodeUnknownOp, Message: "x\xffy"}), want: `{"op":"error","id":"\ufffd","code":"unknown_op","message":"x\ufffdy"}`},
		{name: "pong without id", got: EncodeReply(Request{Op: OpPing}), want: `{"op":"pong"}`},
		{name: "too many subscriptions", got: EncodeError(TooManySubscriptions(100, "7", true)), want: `{"op":"error","id":"7","code":"too_many_subscriptions","message":"subscribe would pass the limit of 100 channels per client"}`},
		{name: "forbidden names the channel", got: EncodeError(Forbidden("trades:X", "s", true)), want: `{"op":"error","id":"s","code":"forbidden","channel":"trades:X","message":"the token does not allow channel \"trades:X\""}`},
		{name: "unauthorized names the channel", got: EncodeError(Unauthorized("trades:X", "", false)), want: `{"op":"error","code":"unauthorized","channel":"trades:X","message":"channel \"trades:X\" needs a token"}`},
		{name: "token expired on subscribe", got: EncodeError(ChannelTokenExpired("t", "s", true)), want: `{"op":"error","id":"s","code":"token_expired","channel":"t","message":"the token has expired; refresh it to subscribe to \"t\""}`},
		{name: "auth off", got: EncodeError(AuthOff("a", true)), want: `{"op":"error","id":"a","code":"invalid_request","message":"authentication is off on this server"}`},
		{name: "authed", got: EncodeAuthed("a1", true, 1767225600), want: `{"op":"authed","id":"a1","exp":1767225600}`},
		{name: "authed from the handshake", got: EncodeAuthed("", false, 1767225600), want: `{"op":"authed","exp":1767225600}`},
		{name: "revoked", got: EncodeRevoked([]string{"trades:A", "trades:B"}, "forbidden"), want: `{"op":"unsubscribed","channels":["trades:A","trades:B"],"reason":"forbidden"}`},
		{name: "non-ascii and line separators kept", got: EncodeReply(Request{Op: OpPing, ID: "é\u2028", HasID: true}), want: "{\"op\":\"pong\",\"id\":\"é\u2028\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got.Wire) != tt.want {
				t.Errorf("got %s, want %s", tt.got.Wire, tt.want)
			}
		})
	}
}

// TestEncodeSkipped: the notice sent in place of a record too large to deliver, byte for
// byte as docs/PROTOCOL.md has it, routed like the record.
func TestEncodeSkipped(t *testing.T) {
	t.Parallel()
	r := Record{Channel: "trades:BTC-USD", Topic: "trades", Partition: 0, Offset: 1234,
		Timestamp: time.UnixMilli(1700000000123), Value: []byte("never read")}
	m := EncodeSkipped(r, "too_large", 2000000)
	want := `{"op":"skipped","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":1234,"ts":1700000000123,"reason":"too_large","size":2000000}`
	if string(m.Wire) != want {
		t.Errorf("EncodeSkipped =\n %s\nwant\n %s", m.Wire, want)
	}
	if m.Channel != r.Channel || m.Topic != r.Topic || m.Offset != r.Offset || !m.Time.Equal(r.Timestamp) {
		t.Errorf("routing fields = %q %q %d %v", m.Channel, m.Topic, m.Offset, m.Time)
	}
}

// BenchmarkEncodeRecord is the per-record encode of the consumer: two allocations (the line
// and its Message).
func BenchmarkEncodeRecord(b *testing.B) {
	r := Record{Channel: "trades:BTC-USD", Topic: "trades", Partition: 3, Offset: 123456789,
		Timestamp: time.UnixMilli(1700000000123), Value: []byte(`{"price":"64123.5","size":"0.25","side":"buy"}`)}
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeRecord(r)
	}
}

// TestEncodeRecordAllocs keeps the per-record encode at two allocations, the line and its
// Message, whatever the offsets and whether the value is JSON or text.
func TestEncodeRecordAllocs(t *testing.T) {
	r := Record{Channel: "trades:BTC-USD", Topic: "trades", Partition: 2147483647, Offset: 9223372036854775807,
		Timestamp: time.UnixMilli(1700000000123)}
	for _, v := range []string{`{"price":"64123.5", "size":"0.25"}`, `price=1`, ` 42`} {
		r.Value = []byte(v)
		if n := testing.AllocsPerRun(100, func() { _ = EncodeRecord(r) }); n > 2 {
			t.Errorf("EncodeRecord(%s) allocates %v times, want at most 2", v, n)
		}
	}
}

// FuzzAppendValue: a record value is embedded exactly as validating it first and then
// compacting it would (the encoder skips the separate validation pass), always one line of
// valid JSON.
func FuzzAppendValue(f *testing.F) {
	for _, v := range []string{``, ` `, `1`, ` {"a": [1, 2]} `, `{"a":1,}`, `hello`, "\"\xff\"", `nul`, `-`, "[\n]"} {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		want := []byte("null")
		if len(value) > 0 {
			want = appendString(nil, string(value))
			if utf8.Valid(value) && json.Valid(value) {
				var buf bytes.Buffer
				if err := json.Compact(&buf, value); err != nil {
					t.Fatalf("json.Compact(%q) = %v after json.Valid", value, err)
				}
				want = buf.Bytes()
			}
		}
		got := appendValue(nil, value)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendValue(%q) = %s, want %s", value, got, want)
		}
		if !json.Valid(got) || bytes.ContainsAny(got, "\r\n") {
			t.Fatalf("appendValue(%q) = %q is not one line of JSON", value, got)
		}
	})
}
