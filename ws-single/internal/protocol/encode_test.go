package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEncodeMessage(t *testing.T) {
	t.Parallel()
	ts := time.UnixMilli(1700000000123)
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{name: "json value compacted",
			rec:  Record{Channel: "trades:BTC-USD", Topic: "trades", Partition: 0, Offset: 1234, Timestamp: ts, Value: []byte("{\n  \"price\": \"64123.5\",\n  \"size\": \"0.25\"\n}")},
			want: `{"op":"message","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":1234,"ts":1700000000123,"data":{"price":"64123.5","size":"0.25"}}`},
		{name: "json scalar", rec: Record{Channel: "t", Topic: "t", Partition: 3, Offset: 7, Timestamp: ts, Value: []byte(" 42 ")},
			want: `{"op":"message","channel":"t","topic":"t","partition":3,"offset":7,"ts":1700000000123,"data":42}`},
		{name: "non-json as string", rec: Record{Channel: "t:k", Topic: "t", Timestamp: ts, Value: []byte("price=1\nsize=2")},
			want: `{"op":"message","channel":"t:k","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":"price=1\nsize=2"}`},
		{name: "empty is null", rec: Record{Channel: "t", Topic: "t", Timestamp: ts},
			want: `{"op":"message","channel":"t","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":null}`},
		{name: "invalid utf8 is a string", rec: Record{Channel: "t", Topic: "t", Timestamp: ts, Value: []byte("\"\xff\"")},
			want: `{"op":"message","channel":"t","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":"\"\ufffd\""}`},
		{name: "channel escaped", rec: Record{Channel: "t:a\"b\n", Topic: "t", Timestamp: ts, Value: []byte("1")},
			want: `{"op":"message","channel":"t:a\"b\n","topic":"t","partition":0,"offset":0,"ts":1700000000123,"data":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(EncodeMessage(tt.rec))
			if got != tt.want {
				t.Fatalf("EncodeMessage =\n%s\nwant\n%s", got, tt.want)
			}
			if !json.Valid([]byte(got)) || strings.Contains(got, "\n") {
				t.Fatalf("EncodeMessage = %q is not one JSON line", got)
			}
		})
	}
}

func TestEncodeReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"subscribed", EncodeReply(Request{Op: OpSubscribe, ID: "1", HasID: true, Channels: []string{"a", "b:*"}}),
			`{"op":"subscribed","id":"1","channels":["a","b:*"]}`},
		{"unsubscribed without id", EncodeReply(Request{Op: OpUnsubscribe, Channels: []string{"a"}}),
			`{"op":"unsubscribed","channels":["a"]}`},
		{"pong with empty id", EncodeReply(Request{Op: OpPing, HasID: true}), `{"op":"pong","id":""}`},
		{"error", EncodeError(&Error{Code: CodeInvalidChannel, Message: `channel "a b": invalid character ' '`, ID: "1", HasID: true}),
			`{"op":"error","id":"1","code":"invalid_channel","message":"channel \"a b\": invalid character ' '"}`},
		{"error without id", EncodeError(&Error{Code: CodeInvalidJSON, Message: "m"}), `{"op":"error","code":"invalid_json","message":"m"}`},
		{"html characters are not escaped", EncodeReply(Request{Op: OpPing, ID: "<a&b>", HasID: true}), `{"op":"pong","id":"<a&b>"}`},
		{"controls escaped", EncodeReply(Request{Op: OpPing, ID: "a\n\r\t\x01\"\\", HasID: true}), `{"op":"pong","id":"a\n\r\t\u0001\"\\"}`},
		{"invalid utf8 replaced", EncodeError(&Error{Code: CodeUnknownOp, Message: "x\xffy", ID: "\xfe", HasID: true}),
			`{"op":"error","id":"\ufffd","code":"unknown_op","message":"x\ufffdy"}`},
		{"non-ascii and line separators kept", EncodeReply(Request{Op: OpPing, ID: "é\u2028", HasID: true}), "{\"op\":\"pong\",\"id\":\"é\u2028\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got) != tt.want {
				t.Fatalf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestEncodeSkipped(t *testing.T) {
	t.Parallel()
	rec := Record{Channel: "trades:BTC-USD", Topic: "trades", Partition: 0, Offset: 1234, Timestamp: time.UnixMilli(1700000000123), Value: []byte("ignored")}
	got := string(EncodeSkipped(rec, "too_large", 2000000))
	want := `{"op":"skipped","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":1234,"ts":1700000000123,"reason":"too_large","size":2000000}`
	if got != want {
		t.Fatalf("EncodeSkipped =\n%s\nwant\n%s", got, want)
	}
}
