// This file is duplicated from ws-single (internal/protocol/request_test.go) on purpose: the
// variants share the protocol and its tests.

package protocol

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		frame     string
		wantCode  string
		wantOp    Op
		wantID    string
		wantHas   bool
		wantChs   []string
		wantToken string
	}{
		{name: "subscribe", frame: `{"op":"subscribe","id":"1","channels":["trades:BTC-USD","tickers:*"]}`, wantOp: OpSubscribe, wantID: "1", wantHas: true, wantChs: []string{"trades:BTC-USD", "tickers:*"}},
		{name: "unsubscribe without id", frame: `{"op":"unsubscribe","channels":["trades"]}`, wantOp: OpUnsubscribe, wantChs: []string{"trades"}},
		{name: "ping", frame: `{"op":"ping","id":"3"}`, wantOp: OpPing, wantID: "3", wantHas: true},
		{name: "ping ignores channels", frame: `{"op":"ping","channels":5}`, wantOp: OpPing},
		{name: "empty id is an id", frame: `{"op":"ping","id":""}`, wantOp: OpPing, wantHas: true},
		{name: "null id is no id", frame: `{"op":"ping","id":null}`, wantOp: OpPing},
		{name: "unknown fields ignored", frame: `{"op":"ping","x":{"y":[1]}}`, wantOp: OpPing},
		{name: "duplicates removed in order", frame: `{"op":"subscribe","channels":["b","a","b","a"]}`, wantOp: OpSubscribe, wantChs: []string{"b", "a"}},
		{name: "duplicates removed in order with a wildcard", frame: `{"op":"subscribe","channels":["b","a","b","a:*","a"]}`, wantOp: OpSubscribe, wantChs: []string{"b", "a", "a:*"}},
		{name: "many duplicates removed in order", frame: `{"op":"subscribe","channels":["c","b","a","b","a","c","d","e","f","g","h","i","j","k","l","m","n","o","a","p","q"]}`, wantOp: OpSubscribe,
			wantChs: []string{"c", "b", "a", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"}},
		{name: "leading whitespace", frame: " \n{\"op\":\"ping\"}", wantOp: OpPing},
		{name: "not json", frame: `hello`, wantCode: CodeInvalidJSON},
		{name: "array", frame: `[1,2]`, wantCode: CodeInvalidJSON},
		{name: "string", frame: `"op"`, wantCode: CodeInvalidJSON},
		{name: "empty", frame: ``, wantCode: CodeInvalidJSON},
		{name: "truncated", frame: `{"op":"ping"`, wantCode: CodeInvalidJSON},
		{name: "trailing garbage", frame: `{"op":"ping"}x`, wantCode: CodeInvalidJSON},
		{name: "op missing", frame: `{"id":"1"}`, wantCode: CodeUnknownOp, wantID: "1", wantHas: true},
		{name: "op null", frame: `{"op":null}`, wantCode: CodeUnknownOp},
		{name: "op unknown", frame: `{"op":"publish","id":"7"}`, wantCode: CodeUnknownOp, wantID: "7", wantHas: true},
		{name: "op case matters", frame: `{"OP":"ping"}`, wantCode: CodeUnknownOp},
		{name: "op wrong type", frame: `{"op":1}`, wantCode: CodeInvalidRequest},
		{name: "op an object", frame: `{"op":{},"id":"8"}`, wantCode: CodeInvalidRequest, wantID: "8", wantHas: true},
		{name: "id wrong type", frame: `{"op":"ping","id":1}`, wantCode: CodeInvalidRequest},
		{name: "id too long", frame: `{"op":"ping","id":"` + strings.Repeat("x", 65) + `"}`, wantCode: CodeInvalidRequest},
		{name: "id of 64 bytes", frame: `{"op":"ping","id":"` + strings.Repeat("x", 64) + `"}`, wantOp: OpPing, wantID: strings.Repeat("x", 64), wantHas: true},
		{name: "channels missing", frame: `{"op":"subscribe","id":"2"}`, wantCode: CodeInvalidRequest, wantID: "2", wantHas: true},
		{name: "channels null", frame: `{"op":"subscribe","channels":null}`, wantCode: CodeInvalidRequest},
		{name: "channels empty", frame: `{"op":"unsubscribe","channels":[]}`, wantCode: CodeInvalidRequest},
		{name: "channels not array", frame: `{"op":"subscribe","channels":"trades"}`, wantCode: CodeInvalidRequest},
		{name: "channels not strings", frame: `{"op":"subscribe","channels":[1]}`, wantCode: CodeInvalidRequest},
		{name: "a channel not a string", frame: `{"op":"subscribe","channels":["a",1]}`, wantCode: CodeInvalidRequest},
		{name: "invalid channel", frame: `{"op":"subscribe","id":"9","channels":["ok","a b"]}`, wantCode: CodeInvalidChannel, wantID: "9", wantHas: true},
		{name: "invalid wildcard", frame: `{"op":"subscribe","channels":["trades:BTC*"]}`, wantCode: CodeInvalidChannel},
		{name: "auth", frame: `{"op":"auth","id":"a","token":"x.y.z"}`, wantOp: OpAuth, wantID: "a", wantHas: true, wantToken: "x.y.z"},
		{name: "auth ignores channels", frame: `{"op":"auth","token":"t","channels":5}`, wantOp: OpAuth, wantToken: "t"},
		{name: "auth token missing", frame: `{"op":"auth","id":"a"}`, wantCode: CodeInvalidRequest, wantID: "a", wantHas: true},
		{name: "auth token null", frame: `{"op":"auth","token":null}`, wantCode: CodeInvalidRequest},
		{name: "auth token empty", frame: `{"op":"auth","token":""}`, wantCode: CodeInvalidRequest},
		{name: "auth token not a string", frame: `{"op":"auth","token":{"jwt":"x"}}`, wantCode: CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, perr := Parse([]byte(tt.frame))
			if tt.wantCode != "" {
				if perr == nil || perr.Code != tt.wantCode {
					t.Fatalf("Parse(%q) error = %v, want code %s", tt.frame, perr, tt.wantCode)
				}
				if perr.ID != tt.wantID || perr.HasID != tt.wantHas {
					t.Errorf("error id = %q/%v, want %q/%v", perr.ID, perr.HasID, tt.wantID, tt.wantHas)
				}
			} else {
				if perr != nil {
					t.Fatalf("Parse(%q) error = %v", tt.frame, perr)
				}
				if req.Op != tt.wantOp {
					t.Errorf("op = %q, want %q", req.Op, tt.wantOp)
				}
				if !slices.Equal(req.Channels, tt.wantChs) {
					t.Errorf("channels = %q, want %q", req.Channels, tt.wantChs)
				}
				if req.Token != tt.wantToken {
					t.Errorf("token = %q, want %q", req.Token, tt.wantToken)
				}
			}
			if req.ID != tt.wantID || req.HasID != tt.wantHas {
				t.Errorf("id = %q/%v, want %q/%v", req.ID, req.HasID, tt.wantID, tt.wantHas)
			}
		})
	}
}

// FuzzParse checks that no frame panics the parser, that accepted requests obey every rule of
// the protocol, and that the reply built from any outcome is one line of valid JSON.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"op":"subscribe","id":"1","channels":["trades:BTC-USD","tickers:*"]}`,
		`{"op":"unsubscribe","id":"2","channels":["trades:BTC-USD"]}`,
		`{"op":"ping","id":"3"}`,
		`{"op":1}`, `[]`, `{"op":"subscribe","channels":["a b"]}`, "{\"id\":\"\xff\"}",
		`{`, `{"op":"subscribe","channels":["*"]}`, "{\"op\":\"ping\",\"id\":\"\xff\"}",
		`{"op":"auth","id":"a","token":"x.y.z"}`, `{"op":"auth","token":""}`,
	} {
		f.Add([]byte(seed))
	}
	codes := map[string]bool{CodeInvalidJSON: true, CodeInvalidRequest: true, CodeUnknownOp: true, CodeInvalidChannel: true}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, perr := Parse(frame)
		if len(req.ID) > MaxIDLen || !utf8.ValidString(req.ID) {
			t.Fatalf("id %q accepted", req.ID)
		}
		var reply *Message
		if perr != nil {
			if !codes[perr.Code] {
				t.Fatalf("Parse(%q) error = %v, not a documented code", frame, perr)
			}
			if req.Channels != nil {
				t.Fatalf("failed parse kept channels %q", req.Channels)
			}
			reply = EncodeError(perr)
		} else {
			switch req.Op {
			case OpPing:
				reply = EncodeReply(req)
			case OpAuth:
				if req.Token == "" || req.Channels != nil {
					t.Fatalf("auth accepted with token %q, channels %q", req.Token, req.Channels)
				}
				reply = EncodeAuthed(req.ID, req.HasID, 1)
			case OpSubscribe, OpUnsubscribe:
				if len(req.Channels) == 0 {
					t.Fatal("subscribe accepted without channels")
				}
				seen := map[string]bool{}
				for _, ch := range req.Channels {
					if err := ValidateChannel(ch); err != nil || seen[ch] {
						t.Fatalf("accepted channel %q twice or invalid: %v", ch, err)
					}
					seen[ch] = true
				}
				reply = EncodeReply(req)
			default:
				t.Fatalf("accepted op %q", req.Op)
			}
		}
		if !json.Valid(reply.Wire) || strings.ContainsRune(string(reply.Wire), '\n') {
			t.Fatalf("reply %q is not one line of JSON", reply.Wire)
		}
	})
}

// TestErrorReplyBytes pins the error replies to docs/PROTOCOL.md's texts, byte for byte.
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
		{name: "channels not strings", frame: `{"op":"subscribe","channels":[1]}`, want: `{"op":"error","code":"invalid_request","message":"channels must be an array of strings"}`},
		{name: "channel empty", frame: `{"op":"subscribe","channels":[""]}`, want: `{"op":"error","code":"invalid_channel","message":"channel \"\": empty"}`},
		{name: "channel star", frame: `{"op":"subscribe","channels":["a*"]}`, want: `{"op":"error","code":"invalid_channel","message":"channel \"a*\": '*' is allowed only as \"<topic>:*\""}`},
		{name: "channel empty topic", frame: `{"op":"subscribe","channels":[":b"]}`, want: `{"op":"error","code":"invalid_channel","message":"channel \":b\": empty topic"}`},
		{name: "channel invalid", frame: `{"op":"subscribe","id":"<&>","channels":["a b"]}`, want: `{"op":"error","id":"<&>","code":"invalid_channel","message":"channel \"a b\": invalid character ' '"}`},
		{name: "channel too long, cut", frame: `{"op":"subscribe","channels":["` + long + `"]}`,
			want: `{"op":"error","code":"invalid_channel","message":"channel \"` + strings.Repeat("x", 64) + `...\": longer than 256 bytes"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, perr := Parse([]byte(tt.frame))
			if perr == nil {
				t.Fatalf("Parse(%q) accepted", tt.frame)
			}
			if got := string(EncodeError(perr).Wire); got != tt.want {
				t.Errorf("reply =\n %s\nwant\n %s", got, tt.want)
			}
		})
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
		_, perr := Parse([]byte(frame))
		if perr == nil {
			t.Fatalf("accepted %.40q", frame)
		}
		reply := EncodeError(perr).Wire
		if len(reply) >= 512 || !json.Valid(reply) {
			t.Errorf("reply to a %d-byte frame is %d bytes (want < 512, valid JSON): %.80s", len(frame), len(reply), reply)
		}
	}
}

// TestErrorCodesMatchProtocol keeps ErrorCodes equal to the codes of the error
// table of docs/PROTOCOL.md, in order.
func TestErrorCodesMatchProtocol(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatalf("read PROTOCOL.md: %v", err)
	}
	text := string(b)
	start := strings.Index(text, "## Errors")
	if start < 0 {
		t.Fatal("no Errors section in PROTOCOL.md")
	}
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var codes []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		codes = append(codes, m[1])
	}
	codes = slices.Compact(codes) // a code has one row per message text
	if !slices.Equal(codes, ErrorCodes) {
		t.Fatalf("ErrorCodes = %v, PROTOCOL.md lists %v", ErrorCodes, codes)
	}
}
