package protocol

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		frame    string
		wantCode string
		wantOp   Op
		wantID   string
		wantHas  bool
		wantChs  []string
	}{
		{name: "subscribe", frame: `{"op":"subscribe","id":"1","channels":["trades:BTC-USD","tickers:*"]}`, wantOp: OpSubscribe, wantID: "1", wantHas: true, wantChs: []string{"trades:BTC-USD", "tickers:*"}},
		{name: "unsubscribe without id", frame: `{"op":"unsubscribe","channels":["trades"]}`, wantOp: OpUnsubscribe, wantChs: []string{"trades"}},
		{name: "ping", frame: `{"op":"ping","id":"3"}`, wantOp: OpPing, wantID: "3", wantHas: true},
		{name: "ping ignores channels", frame: `{"op":"ping","channels":5}`, wantOp: OpPing},
		{name: "empty id is an id", frame: `{"op":"ping","id":""}`, wantOp: OpPing, wantHas: true},
		{name: "null id is no id", frame: `{"op":"ping","id":null}`, wantOp: OpPing},
		{name: "unknown fields ignored", frame: `{"op":"ping","x":{"y":[1]}}`, wantOp: OpPing},
		{name: "duplicates removed in order", frame: `{"op":"subscribe","channels":["b","a","b","a"]}`, wantOp: OpSubscribe, wantChs: []string{"b", "a"}},
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
		{name: "id wrong type", frame: `{"op":"ping","id":1}`, wantCode: CodeInvalidRequest},
		{name: "id too long", frame: `{"op":"ping","id":"` + strings.Repeat("x", 65) + `"}`, wantCode: CodeInvalidRequest},
		{name: "id of 64 bytes", frame: `{"op":"ping","id":"` + strings.Repeat("x", 64) + `"}`, wantOp: OpPing, wantID: strings.Repeat("x", 64), wantHas: true},
		{name: "channels missing", frame: `{"op":"subscribe","id":"2"}`, wantCode: CodeInvalidRequest, wantID: "2", wantHas: true},
		{name: "channels null", frame: `{"op":"subscribe","channels":null}`, wantCode: CodeInvalidRequest},
		{name: "channels empty", frame: `{"op":"unsubscribe","channels":[]}`, wantCode: CodeInvalidRequest},
		{name: "channels not array", frame: `{"op":"subscribe","channels":"trades"}`, wantCode: CodeInvalidRequest},
		{name: "channels not strings", frame: `{"op":"subscribe","channels":[1]}`, wantCode: CodeInvalidRequest},
		{name: "invalid channel", frame: `{"op":"subscribe","id":"9","channels":["ok","a b"]}`, wantCode: CodeInvalidChannel, wantID: "9", wantHas: true},
		{name: "invalid wildcard", frame: `{"op":"subscribe","channels":["trades:BTC*"]}`, wantCode: CodeInvalidChannel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, perr := Parse([]byte(tt.frame))
			if tt.wantCode != "" {
				if perr == nil || perr.Code != tt.wantCode {
					t.Fatalf("Parse(%q) error = %v, want code %s", tt.frame, perr, tt.wantCode)
				}
			} else {
				if perr != nil {
					t.Fatalf("Parse(%q) error = %v", tt.frame, perr)
				}
				if req.Op != tt.wantOp {
					t.Errorf("op = %d, want %d", req.Op, tt.wantOp)
				}
				if !slices.Equal(req.Channels, tt.wantChs) {
					t.Errorf("channels = %q, want %q", req.Channels, tt.wantChs)
				}
			}
			if req.ID != tt.wantID || req.HasID != tt.wantHas {
				t.Errorf("id = %q/%v, want %q/%v", req.ID, req.HasID, tt.wantID, tt.wantHas)
			}
		})
	}
}

func TestValidateChannel(t *testing.T) {
	tests := []struct {
		name    string
		channel string
		ok      bool
		msg     string
	}{
		{name: "topic and key", channel: "trades:BTC-USD", ok: true},
		{name: "topic only", channel: "trades", ok: true},
		{name: "wildcard", channel: "tickers:*", ok: true},
		{name: "key with colon", channel: "book:BTC:USD", ok: true},
		{name: "printable edges", channel: "!~", ok: true},
		{name: "max length", channel: strings.Repeat("a", 256), ok: true},
		{name: "too long", channel: strings.Repeat("a", 257)},
		{name: "empty", channel: ""},
		{name: "space", channel: "a b", msg: `channel "a b": invalid character ' '`},
		{name: "quote", channel: `a"b`},
		{name: "backslash", channel: `a\b`},
		{name: "control", channel: "a\x01"},
		{name: "non ascii", channel: "héllo"},
		{name: "empty topic", channel: ":key"},
		{name: "empty topic wildcard", channel: ":*"},
		{name: "star alone", channel: "*"},
		{name: "star in key", channel: "trades:BTC*"},
		{name: "nested wildcard", channel: "a:b:*"},
		{name: "double wildcard", channel: "a:*:*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateChannel(tt.channel)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateChannel(%q) = %v, want ok=%v", tt.channel, err, tt.ok)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("message = %q, want %q", err.Error(), tt.msg)
			}
		})
	}
}

// TestRecordChannel is the channel header rule: a record's channel is its one "channel"
// header when that is a valid, non-wildcard channel of the record's own topic; with no
// header it is "<topic>:<key>" or "<topic>"; anything else is delivered to nobody.
func TestRecordChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		header  string
		headers int
		want    string
		ok      bool
	}{
		{name: "key", key: "BTC-USD", want: "trades:BTC-USD", ok: true},
		{name: "no key", want: "trades", ok: true},
		{name: "header of the own topic overrides", key: "BTC-USD", header: "trades:special", headers: 1, want: "trades:special", ok: true},
		{name: "header naming the topic itself", key: "k", header: "trades", headers: 1, want: "trades", ok: true},
		{name: "header with colons in the key", header: "trades:BTC:USD", headers: 1, want: "trades:BTC:USD", ok: true},
		{name: "header of another topic", key: "k", header: "tickers:X", headers: 1},
		{name: "header of a topic with the same prefix", header: "tradesX:1", headers: 1},
		{name: "header wildcard", header: "trades:*", headers: 1},
		{name: "header invalid", header: "trades:a b", headers: 1},
		{name: "header empty", header: "", headers: 1},
		{name: "header too long", header: "trades:" + strings.Repeat("x", 250), headers: 1},
		{name: "two headers", header: "trades:a", headers: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := RecordChannel("trades", []byte(tt.key), []byte(tt.header), tt.headers)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RecordChannel = %q, %v, want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestInTopicAndWildcardTopic(t *testing.T) {
	t.Parallel()
	wild := []struct {
		channel string
		want    bool
	}{
		{"trades", true}, {"trades:BTC", true}, {"tradesX", false}, {"trade", false}, {"tickers:BTC", false},
	}
	for _, w := range wild {
		if got := InTopic(w.channel, "trades"); got != w.want {
			t.Errorf("InTopic(%q, trades) = %v, want %v", w.channel, got, w.want)
		}
	}
	if topic, ok := WildcardTopic("trades:*"); !ok || topic != "trades" {
		t.Errorf("WildcardTopic(trades:*) = %q, %v", topic, ok)
	}
	if _, ok := WildcardTopic("trades:BTC"); ok {
		t.Error("WildcardTopic(trades:BTC) reported a wildcard")
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
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, perr := Parse(frame)
		if len(req.ID) > MaxIDLen {
			t.Fatalf("id of %d bytes accepted", len(req.ID))
		}
		var reply *Message
		if perr != nil {
			if req.Channels != nil {
				t.Fatalf("failed parse kept channels %q", req.Channels)
			}
			reply = ErrorReply(req.ID, req.HasID, perr.Code, perr.Message)
		} else {
			switch req.Op {
			case OpPing:
				reply = Pong(req.ID, req.HasID)
			case OpSubscribe, OpUnsubscribe:
				if len(req.Channels) == 0 {
					t.Fatal("subscribe accepted without channels")
				}
				for _, ch := range req.Channels {
					if err := ValidateChannel(ch); err != nil {
						t.Fatalf("accepted invalid channel: %v", err)
					}
				}
				reply = Reply(req.Op, req.ID, req.HasID, req.Channels)
			default:
				t.Fatalf("accepted op %d", req.Op)
			}
		}
		if !json.Valid(reply.Wire) || strings.ContainsRune(string(reply.Wire), '\n') {
			t.Fatalf("reply %q is not one line of JSON", reply.Wire)
		}
	})
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
