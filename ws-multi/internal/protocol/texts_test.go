package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestErrorReplyBytes pins the error replies to docs/PROTOCOL.md's texts, the same bytes
// ws-single sends for the same frame.
func TestErrorReplyBytes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	tests := []struct {
		name  string
		frame string
		want  string
	}{
		{name: "not json", frame: `hello`, want: `{"op":"error","code":"invalid_json","message":"frame is not a JSON object"}`},
		{name: "id not a string", frame: `{"op":"ping","id":1}`, want: `{"op":"error","code":"invalid_request","message":"id must be a string"}`},
		{name: "id too long", frame: `{"op":"ping","id":"` + strings.Repeat("i", 65) + `"}`, want: `{"op":"error","code":"invalid_request","message":"id is longer than 64 bytes"}`},
		{name: "op missing", frame: `{"id":"1"}`, want: `{"op":"error","id":"1","code":"unknown_op","message":"op is missing"}`},
		{name: "op null", frame: `{"op":null,"id":"1"}`, want: `{"op":"error","id":"1","code":"unknown_op","message":"op is missing"}`},
		{name: "op not a string", frame: `{"op":1,"id":"1"}`, want: `{"op":"error","id":"1","code":"invalid_request","message":"op must be a string"}`},
		{name: "op unknown", frame: `{"op":"publish","id":"1"}`, want: `{"op":"error","id":"1","code":"unknown_op","message":"unknown op \"publish\""}`},
		{name: "op unknown, long, cut", frame: `{"op":"` + long + `"}`,
			want: `{"op":"error","code":"unknown_op","message":"unknown op \"` + strings.Repeat("x", 64) + `...\""}`},
		{name: "channels missing", frame: `{"op":"subscribe","id":"2"}`, want: `{"op":"error","id":"2","code":"invalid_request","message":"channels must be an array of strings"}`},
		{name: "channels null", frame: `{"op":"subscribe","channels":null}`, want: `{"op":"error","code":"invalid_request","message":"channels must be an array of strings"}`},
		{name: "channels wrong type", frame: `{"op":"unsubscribe","channels":"a"}`, want: `{"op":"error","code":"invalid_request","message":"channels must be an array of strings"}`},
		{name: "channels empty", frame: `{"op":"subscribe","channels":[]}`, want: `{"op":"error","code":"invalid_request","message":"channels must not be empty"}`},
		{name: "channel invalid", frame: `{"op":"subscribe","id":"<&>","channels":["a b"]}`, want: `{"op":"error","id":"<&>","code":"invalid_channel","message":"channel \"a b\": invalid character ' '"}`},
		{name: "channel too long, cut", frame: `{"op":"subscribe","channels":["` + long + `"]}`,
			want: `{"op":"error","code":"invalid_channel","message":"channel \"` + strings.Repeat("x", 64) + `...\": longer than 256 bytes"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, perr := Parse([]byte(tt.frame))
			if perr == nil {
				t.Fatalf("Parse(%q) accepted", tt.frame)
			}
			if got := string(ErrorReply(req.ID, req.HasID, perr.Code, perr.Message).Wire); got != tt.want {
				t.Errorf("reply =\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}

// TestChannelErrorTexts pins every invalid_channel text (ws-single's check order and words).
func TestChannelErrorTexts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		channel, want string
	}{
		{"", `channel "": empty`},
		{strings.Repeat("a", 257), `channel "` + strings.Repeat("a", 64) + `...": longer than 256 bytes`},
		{"trades:BTC*", `channel "trades:BTC*": '*' is allowed only as "<topic>:*"`},
		{"*", `channel "*": '*' is allowed only as "<topic>:*"`},
		{"a:b:*", `channel "a:b:*": '*' is allowed only as "<topic>:*"`},
		{"a b*", `channel "a b*": invalid character ' '`},
		{"a\x7f", `channel "a\x7f": invalid character '\x7f'`},
		{"é", `channel "é": invalid character 'Ã'`},
		{":key", `channel ":key": empty topic`},
		{":*", `channel ":*": empty topic`},
		{strings.Repeat("a", 70) + " ", `channel "` + strings.Repeat("a", 64) + `...": invalid character ' '`},
	}
	for _, tt := range tests {
		err := ValidateChannel(tt.channel)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ValidateChannel(%q) = %v, want %s", tt.channel, err, tt.want)
		}
	}
}

// TestEchoIsCapped: a 4 KB subscribe of DEL bytes draws a short reply, not one that grows
// with what the client sent.
func TestEchoIsCapped(t *testing.T) {
	t.Parallel()
	for _, frame := range []string{
		`{"op":"subscribe","channels":["` + strings.Repeat("\x7f", 4096) + `"]}`,
		`{"op":"subscribe","channels":["` + strings.Repeat("\x7f", 200) + `"]}`,
		`{"op":"` + strings.Repeat("\x7f", 4096) + `"}`,
		`{"op":"subscribe","channels":["` + strings.Repeat(`\u0001`, 4096) + `"]}`,
	} {
		req, perr := Parse([]byte(frame))
		if perr == nil {
			t.Fatalf("accepted %.40q", frame)
		}
		reply := ErrorReply(req.ID, req.HasID, perr.Code, perr.Message).Wire
		if len(reply) >= 512 || !json.Valid(reply) {
			t.Errorf("reply to a %d-byte frame is %d bytes (want < 512, valid JSON): %.80s", len(frame), len(reply), reply)
		}
	}
}
