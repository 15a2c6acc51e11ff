package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
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
			if m.Channel != tt.wantCh || m.Topic != tt.rec.Topic || m.Offset != tt.rec.Offset {
				t.Errorf("routing fields = %q %q %d", m.Channel, m.Topic, m.Offset)
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
		{name: "subscribed", got: Reply(OpSubscribe, "1", true, []string{"trades:BTC-USD", "tickers:*"}), want: `{"op":"subscribed","id":"1","channels":["trades:BTC-USD","tickers:*"]}`},
		{name: "unsubscribed no id", got: Reply(OpUnsubscribe, "", false, []string{"a"}), want: `{"op":"unsubscribed","channels":["a"]}`},
		{name: "pong", got: Pong("3", true), want: `{"op":"pong","id":"3"}`},
		{name: "pong empty id", got: Pong("", true), want: `{"op":"pong","id":""}`},
		{name: "error", got: ErrorReply("1", true, CodeInvalidChannel, `channel "a b": invalid character ' '`), want: `{"op":"error","id":"1","code":"invalid_channel","message":"channel \"a b\": invalid character ' '"}`},
		{name: "control characters escaped", got: Pong("a\x01\tb", true), want: `{"op":"pong","id":"a\u0001\tb"}`},
		{name: "html characters not escaped", got: Pong("<a href='x'>&amp;</a>", true), want: `{"op":"pong","id":"<a href='x'>&amp;</a>"}`},
		{name: "newlines and quotes escaped", got: Pong("a\r\n\"\\b", true), want: `{"op":"pong","id":"a\r\n\"\\b"}`},
		{name: "invalid utf8 replaced", got: Pong("a\xffb\xc3", true), want: `{"op":"pong","id":"a\ufffdb\ufffd"}`},
		{name: "DEL is not escaped", got: Pong("\x7f", true), want: "{\"op\":\"pong\",\"id\":\"\x7f\"}"},
		{name: "error without id", got: ErrorReply("", false, CodeInvalidJSON, "frame is not a JSON object"), want: `{"op":"error","code":"invalid_json","message":"frame is not a JSON object"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got.Wire) != tt.want {
				t.Errorf("got %s, want %s", tt.got.Wire, tt.want)
			}
		})
	}
}

// TestEncodeSkipped: the notice sent in place of a record too large to deliver, byte for
// byte as docs/PROTOCOL.md and ws-single have it, routed like the record.
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
