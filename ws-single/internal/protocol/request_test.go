package protocol

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    Request
		code    string
		errID   string
		errHasI bool
	}{
		{name: "subscribe", in: `{"op":"subscribe","id":"1","channels":["trades:BTC-USD","tickers:*"]}`,
			want: Request{Op: OpSubscribe, ID: "1", HasID: true, Channels: []string{"trades:BTC-USD", "tickers:*"}}},
		{name: "unsubscribe without id", in: `{"op":"unsubscribe","channels":["trades"]}`,
			want: Request{Op: OpUnsubscribe, Channels: []string{"trades"}}},
		{name: "ping", in: `{"op":"ping","id":"3"}`, want: Request{Op: OpPing, ID: "3", HasID: true}},
		{name: "empty id is an id", in: `{"op":"ping","id":""}`, want: Request{Op: OpPing, HasID: true}},
		{name: "null id is no id", in: `{"op":"ping","id":null}`, want: Request{Op: OpPing}},
		{name: "unknown fields ignored", in: ` {"op":"ping","x":[1,2],"y":{}}`, want: Request{Op: OpPing}},
		{name: "duplicates removed in order", in: `{"op":"subscribe","channels":["b","a","b","a:*","a"]}`,
			want: Request{Op: OpSubscribe, Channels: []string{"b", "a", "a:*"}}},
		{name: "not json", in: `hello`, code: CodeInvalidJSON},
		{name: "empty frame", in: ``, code: CodeInvalidJSON},
		{name: "array", in: `[1]`, code: CodeInvalidJSON},
		{name: "null", in: `null`, code: CodeInvalidJSON},
		{name: "truncated object", in: `{"op":"ping"`, code: CodeInvalidJSON},
		{name: "trailing garbage", in: `{"op":"ping"} x`, code: CodeInvalidJSON},
		{name: "id not a string", in: `{"op":"ping","id":5}`, code: CodeInvalidRequest},
		{name: "id too long", in: `{"op":"ping","id":"` + strings.Repeat("x", 65) + `"}`, code: CodeInvalidRequest},
		{name: "id of 64 bytes", in: `{"op":"ping","id":"` + strings.Repeat("x", 64) + `"}`,
			want: Request{Op: OpPing, ID: strings.Repeat("x", 64), HasID: true}},
		{name: "missing op", in: `{"id":"7"}`, code: CodeUnknownOp, errID: "7", errHasI: true},
		{name: "null op", in: `{"op":null}`, code: CodeUnknownOp},
		{name: "unknown op", in: `{"op":"publish","id":"7"}`, code: CodeUnknownOp, errID: "7", errHasI: true},
		{name: "op not a string", in: `{"op":1}`, code: CodeInvalidRequest},
		{name: "op an object", in: `{"op":{},"id":"8"}`, code: CodeInvalidRequest, errID: "8", errHasI: true},
		{name: "op case matters", in: `{"OP":"ping"}`, code: CodeUnknownOp},
		{name: "channels missing", in: `{"op":"subscribe","id":"2"}`, code: CodeInvalidRequest, errID: "2", errHasI: true},
		{name: "channels null", in: `{"op":"subscribe","channels":null}`, code: CodeInvalidRequest},
		{name: "channels empty", in: `{"op":"unsubscribe","channels":[]}`, code: CodeInvalidRequest},
		{name: "channels not array", in: `{"op":"subscribe","channels":"trades"}`, code: CodeInvalidRequest},
		{name: "channel not string", in: `{"op":"subscribe","channels":["a",1]}`, code: CodeInvalidRequest},
		{name: "invalid channel", in: `{"op":"subscribe","id":"1","channels":["ok","a b"]}`, code: CodeInvalidChannel, errID: "1", errHasI: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(tt.in))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Parse(%s) error = %v", tt.in, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Parse(%s) = %+v, want %+v", tt.in, got, tt.want)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%s) error = %v, want *Error with code %s", tt.in, err, tt.code)
			}
			if pe.Code != tt.code || pe.ID != tt.errID || pe.HasID != tt.errHasI {
				t.Fatalf("Parse(%s) error = %+v, want code %s id %q/%v", tt.in, pe, tt.code, tt.errID, tt.errHasI)
			}
		})
	}
}

// TestErrorTexts pins every error message of PROTOCOL.md's error table, byte for
// byte: ws-multi sends the same ones.
func TestErrorTexts(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, in, code, message string
	}{
		{"not json", `nope`, CodeInvalidJSON, "frame is not a JSON object"},
		{"id not a string", `{"op":"ping","id":1}`, CodeInvalidRequest, "id must be a string"},
		{"id too long", `{"op":"ping","id":"` + strings.Repeat("i", 65) + `"}`, CodeInvalidRequest, "id is longer than 64 bytes"},
		{"op missing", `{}`, CodeUnknownOp, "op is missing"},
		{"op null", `{"op":null}`, CodeUnknownOp, "op is missing"},
		{"op not a string", `{"op":1}`, CodeInvalidRequest, "op must be a string"},
		{"unknown op", `{"op":"publish"}`, CodeUnknownOp, `unknown op "publish"`},
		{"unknown op cut", `{"op":"` + long + `"}`, CodeUnknownOp, `unknown op "` + strings.Repeat("x", 64) + `..."`},
		{"channels missing", `{"op":"subscribe"}`, CodeInvalidRequest, "channels must be an array of strings"},
		{"channels null", `{"op":"subscribe","channels":null}`, CodeInvalidRequest, "channels must be an array of strings"},
		{"channels wrong type", `{"op":"subscribe","channels":[1]}`, CodeInvalidRequest, "channels must be an array of strings"},
		{"channels empty", `{"op":"subscribe","channels":[]}`, CodeInvalidRequest, "channels must not be empty"},
		{"channel empty", `{"op":"subscribe","channels":[""]}`, CodeInvalidChannel, `channel "": empty`},
		{"channel too long", `{"op":"subscribe","channels":["` + long + `"]}`, CodeInvalidChannel,
			`channel "` + strings.Repeat("x", 64) + `...": longer than 256 bytes`},
		{"channel star", `{"op":"subscribe","channels":["a*"]}`, CodeInvalidChannel, `channel "a*": '*' is allowed only as "<topic>:*"`},
		{"channel character", `{"op":"subscribe","channels":["a b"]}`, CodeInvalidChannel, `channel "a b": invalid character ' '`},
		{"channel empty topic", `{"op":"subscribe","channels":[":b"]}`, CodeInvalidChannel, `channel ":b": empty topic`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.in))
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tt.code || pe.Message != tt.message {
				t.Fatalf("Parse(%.80s) = %v, want %s %q", tt.in, err, tt.code, tt.message)
			}
		})
	}
	if got, want := TooManySubscriptions(100, "", false).Message, "subscribe would pass the limit of 100 channels per client"; got != want {
		t.Fatalf("too_many_subscriptions message = %q, want %q", got, want)
	}
}

// TestEchoIsCapped: a 4 KB subscribe of DEL bytes draws a short reply, not one
// that echoes (and escapes) all of it.
func TestEchoIsCapped(t *testing.T) {
	t.Parallel()
	frame := `{"op":"subscribe","id":"1","channels":["` + strings.Repeat("\u007f", 4096) + `"]}`
	_, err := Parse([]byte(frame))
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeInvalidChannel {
		t.Fatalf("Parse = %v, want invalid_channel", err)
	}
	reply := EncodeError(pe)
	if len(reply) >= 512 {
		t.Fatalf("reply to a 4 KB channel is %d bytes, want < 512: %s", len(reply), reply)
	}
	if !json.Valid(reply) {
		t.Fatalf("reply %s is not JSON", reply)
	}
}

// FuzzParse checks that no input panics the parser, that every error is a
// documented code, and that accepted requests hold only valid channels.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"op":"subscribe","id":"1","channels":["trades:BTC-USD","tickers:*"]}`,
		`{"op":"unsubscribe","channels":["a"]}`, `{"op":"ping","id":"x"}`,
		`[]`, `{`, `{"op":5}`, `{"op":"subscribe","channels":["*"]}`, "{\"op\":\"ping\",\"id\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	codes := map[string]bool{CodeInvalidJSON: true, CodeInvalidRequest: true, CodeUnknownOp: true, CodeInvalidChannel: true}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := Parse(frame)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !codes[pe.Code] {
				t.Fatalf("Parse(%q) error = %v, not a documented code", frame, err)
			}
			line := EncodeError(pe)
			if !json.Valid(line) || strings.ContainsRune(string(line), '\n') {
				t.Fatalf("error reply %q is not one JSON line", line)
			}
			return
		}
		if len(req.ID) > MaxIDLen || !utf8.ValidString(req.ID) {
			t.Fatalf("Parse(%q) accepted id %q", frame, req.ID)
		}
		seen := map[string]bool{}
		for _, ch := range req.Channels {
			if err := ValidateChannel(ch); err != nil || seen[ch] {
				t.Fatalf("Parse(%q) accepted channel %q twice or invalid: %v", frame, ch, err)
			}
			seen[ch] = true
		}
		if line := EncodeReply(req); !json.Valid(line) {
			t.Fatalf("reply %q is not JSON", line)
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
