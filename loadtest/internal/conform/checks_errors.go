package conform

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/coder/websocket"
)

// errorCase is one request that must be answered with an error reply.
type errorCase struct {
	name  string
	frame string
	// id is the id the reply must carry; empty means the reply must carry none.
	id string
	// anyID skips the id comparison, for requests whose id is itself the fault.
	anyID bool
	// message is the exact `message` of the reply; empty accepts any non-empty one.
	message string
	// maxReply, when set, bounds the reply's line in bytes.
	maxReply int
}

// expectErrors sends each case on one connection, expects an error reply with code, and
// finally a pong: the connection stays open after errors.
func expectErrors(ctx context.Context, s *suite, code string, cases []errorCase) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	for _, tc := range cases {
		if err := c.sendRaw(ctx, websocket.MessageText, []byte(tc.frame)); err != nil {
			return "", fmt.Errorf("%s: %w", tc.name, err)
		}
		var r Envelope
		switch {
		case tc.anyID:
			// The next reply, whatever its id: replies keep request order.
			r, err = c.waitFor(ctx, "error reply", func(e Envelope) bool { return e.Op != "message" })
		case tc.id != "":
			r, err = c.reply(ctx, tc.id)
		default:
			r, err = c.waitFor(ctx, "reply without id", func(e Envelope) bool { return e.Op != "message" && e.ID == nil })
		}
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", tc.name, clip([]byte(tc.frame)), err)
		}
		if r.Op != "error" || r.Code != code {
			return "", fmt.Errorf("%s %s: reply %s, want error %s", tc.name, clip([]byte(tc.frame)), r.Raw, code)
		}
		if r.Message == "" {
			return "", fmt.Errorf("%s: error reply %s has no message", tc.name, r.Raw)
		}
		if tc.message != "" && r.Message != tc.message {
			return "", fmt.Errorf("%s %s: message %s, want %s", tc.name, clip([]byte(tc.frame)), clip(fmt.Appendf(nil, "%q", r.Message)), clip(fmt.Appendf(nil, "%q", tc.message)))
		}
		if tc.maxReply > 0 && len(r.Raw) >= tc.maxReply {
			return "", fmt.Errorf("%s: a reply of %d bytes (%s), want under %d", tc.name, len(r.Raw), clip(r.Raw), tc.maxReply)
		}
	}
	if err := c.ping(ctx, "still-open"); err != nil {
		return "", fmt.Errorf("after %d errors the connection must stay open: %w", len(cases), err)
	}
	return fmt.Sprintf("%d cases", len(cases)), nil
}

const notAnObject = "frame is not a JSON object"

func checkInvalidJSON(ctx context.Context, s *suite) (string, error) {
	return expectErrors(ctx, s, "invalid_json", []errorCase{
		{name: "text", frame: "hello", message: notAnObject},
		{name: "truncated object", frame: `{"op":"ping","id":"t"`, message: notAnObject},
		{name: "array", frame: `[{"op":"ping"}]`, message: notAnObject},
		{name: "string", frame: `"ping"`, message: notAnObject},
		{name: "number", frame: `42`, message: notAnObject},
		{name: "null", frame: `null`, message: notAnObject},
		{name: "empty frame", frame: ``, message: notAnObject},
	})
}

const channelsNotArray = "channels must be an array of strings"

func checkInvalidRequest(ctx context.Context, s *suite) (string, error) {
	return expectErrors(ctx, s, "invalid_request", []errorCase{
		{name: "subscribe without channels", frame: `{"op":"subscribe","id":"r1"}`, id: "r1", message: channelsNotArray},
		{name: "subscribe with empty channels", frame: `{"op":"subscribe","id":"r2","channels":[]}`, id: "r2", message: "channels must not be empty"},
		{name: "subscribe with null channels", frame: `{"op":"subscribe","id":"r3","channels":null}`, id: "r3", message: channelsNotArray},
		{name: "channels is a string", frame: `{"op":"subscribe","id":"r4","channels":"trades:x"}`, id: "r4", message: channelsNotArray},
		{name: "channel is a number", frame: `{"op":"subscribe","id":"r5","channels":[1]}`, id: "r5", message: channelsNotArray},
		{name: "unsubscribe without channels", frame: `{"op":"unsubscribe","id":"r6"}`, id: "r6", message: channelsNotArray},
		{name: "unsubscribe with empty channels", frame: `{"op":"unsubscribe","id":"r7","channels":[]}`, id: "r7", message: "channels must not be empty"},
		{name: "one channel of several is a number", frame: `{"op":"subscribe","id":"r8","channels":["t:a",2]}`, id: "r8", message: channelsNotArray},
		{name: "op is a number", frame: `{"op":1,"id":"r9"}`, id: "r9", message: "op must be a string"},
		{name: "op is an object", frame: `{"op":{"a":1},"id":"r10"}`, id: "r10", message: "op must be a string"},
		{name: "id is a number", frame: `{"op":"ping","id":7}`, anyID: true, message: "id must be a string"},
		{name: "id of 65 bytes", frame: `{"op":"ping","id":"` + strings.Repeat("i", 65) + `"}`, anyID: true, message: "id is longer than 64 bytes"},
	})
}

func checkUnknownOp(ctx context.Context, s *suite) (string, error) {
	long := strings.Repeat("o", 100)
	return expectErrors(ctx, s, "unknown_op", []errorCase{
		{name: "op missing", frame: `{"id":"k1","channels":["trades:x"]}`, id: "k1", message: "op is missing"},
		{name: "op publish", frame: `{"op":"publish","id":"k2"}`, id: "k2", message: `unknown op "publish"`},
		{name: "op empty", frame: `{"op":"","id":"k3"}`, id: "k3", message: `unknown op ""`},
		{name: "op in capitals", frame: `{"op":"PING","id":"k4"}`, id: "k4", message: `unknown op "PING"`},
		{name: "op null", frame: `{"op":null,"id":"k5"}`, id: "k5", message: "op is missing"},
		{name: "op of 100 bytes, echoed cut to 64", frame: `{"op":"` + long + `","id":"k6"}`, id: "k6", message: `unknown op "` + long[:64] + `..."`},
		{name: "op missing, no id", frame: `{}`, message: "op is missing"},
	})
}

// echoed is how an error message quotes client text: cut to 64 bytes and "...", then %q.
func echoed(text string) string {
	if len(text) > 64 {
		text = text[:64] + "..."
	}
	return fmt.Sprintf("%q", text)
}

func checkInvalidChannel(ctx context.Context, s *suite) (string, error) {
	sub := func(id, ch string) string {
		b, _ := json.Marshal(map[string]any{"op": "subscribe", "id": id, "channels": []string{ch}})
		return string(b)
	}
	star := `: '*' is allowed only as "<topic>:*"`
	long := "t:" + strings.Repeat("a", 255)
	detail, err := expectErrors(ctx, s, "invalid_channel", []errorCase{
		{name: "empty", frame: sub("c1", ""), id: "c1", message: `channel "": empty`},
		{name: "space", frame: sub("c2", "a b"), id: "c2", message: `channel "a b": invalid character ' '`},
		{name: "empty topic", frame: sub("c3", ":x"), id: "c3", message: `channel ":x": empty topic`},
		{name: "star inside a key", frame: sub("c4", s.cfg.Topic+":a*"), id: "c4", message: "channel " + echoed(s.cfg.Topic+":a*") + star},
		{name: "bare star", frame: sub("c5", "*"), id: "c5", message: `channel "*"` + star},
		{name: "star without colon", frame: sub("c6", s.cfg.Topic+"*"), id: "c6", message: "channel " + echoed(s.cfg.Topic+"*") + star},
		{name: "257 bytes", frame: sub("c7", long), id: "c7", message: "channel " + echoed(long) + ": longer than 256 bytes"},
		{name: "double quote", frame: sub("c8", `t:a"b`), id: "c8", message: `channel "t:a\"b": invalid character '"'`},
		{name: "backslash", frame: sub("c9", `t:a\b`), id: "c9", message: `channel "t:a\\b": invalid character '\\'`},
		// The text of a non-ASCII byte is left open: only the code is checked.
		{name: "non-ASCII", frame: sub("c10", "t:é"), id: "c10"},
		{name: "tab", frame: sub("c11", "t:a\tb"), id: "c11", message: `channel "t:a\tb": invalid character '\t'`},
		{name: "DEL", frame: sub("c12", "t:a\x7fb"), id: "c12", message: `channel "t:a\x7fb": invalid character '\x7f'`},
		{name: "star topic", frame: sub("c13", "*:x"), id: "c13", message: `channel "*:x"` + star},
		{name: "star before a wildcard", frame: sub("c14", "a:b:*"), id: "c14", message: `channel "a:b:*"` + star},
	})
	if err != nil {
		return "", err
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	for i, ch := range []string{
		"t:" + strings.Repeat("a", 254), // 256 bytes
		s.cfg.Topic + ":*",
		s.cfg.Topic,
		"t:a:b",
		"t:!#$%&'()+,-./;<=>?@[]^_`{|}~",
	} {
		if err := c.subscribe(ctx, fmt.Sprintf("ok%d", i), ch); err != nil {
			return "", fmt.Errorf("valid channel %q: %w", ch, err)
		}
	}
	return detail + ", 5 valid edge cases accepted", nil
}

// checkEchoCap subscribes to one channel of DEL bytes as long as the read limit allows
// (4000 bytes by default): the error may quote only its first 64 bytes, so the reply
// stays under 512 bytes.
func checkEchoCap(ctx context.Context, s *suite) (string, error) {
	const head, tail = `{"op":"subscribe","id":"cap","channels":["`, `"]}`
	n := min(4000, s.cfg.ReadLimit-len(head)-len(tail))
	ch := strings.Repeat("\x7f", n)
	fault := ": longer than 256 bytes" // the length is checked before the characters
	if n <= 256 {
		fault = `: invalid character '\x7f'`
	}
	return expectErrors(ctx, s, "invalid_channel", []errorCase{
		{name: fmt.Sprintf("a channel of %d DEL bytes", n), frame: head + ch + tail, id: "cap",
			message: "channel " + echoed(ch) + fault, maxReply: 512},
	})
}

// checkTooManySubscriptions fills a connection to one below WS_MAX_SUBSCRIPTIONS and then
// proves with counts that failed subscribes took nothing.
func checkTooManySubscriptions(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	limit := s.cfg.MaxSubscriptions
	name := func(what string, i int) string { return fmt.Sprintf("%s:%s%d", s.run, what, i) }
	// Fill to limit-1 in requests that stay well inside the read limit.
	var batch []string
	size, req := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		req++
		err := c.subscribe(ctx, fmt.Sprintf("fill%d", req), batch...)
		batch, size = nil, 0
		return err
	}
	for i := range limit - 1 {
		ch := name("f", i)
		if size+len(ch)+3 > s.cfg.ReadLimit/2 {
			if err := flush(); err != nil {
				return "", err
			}
		}
		batch = append(batch, ch)
		size += len(ch) + 3
	}
	if err := flush(); err != nil {
		return "", err
	}
	expectErr := func(id, code string, channels ...string) error {
		r, err := c.request(ctx, id, map[string]any{"op": "subscribe", "id": id, "channels": channels})
		if err != nil {
			return err
		}
		if r.Op != "error" || r.Code != code {
			return fmt.Errorf("subscribe %v with %d of %d taken: reply %s, want error %s", channels, limit-1, limit, r.Raw, code)
		}
		if want := fmt.Sprintf("subscribe would pass the limit of %d channels per client", limit); code == "too_many_subscriptions" && r.Message != want {
			return fmt.Errorf("subscribe %v with %d of %d taken: message %q, want %q", channels, limit-1, limit, r.Message, want)
		}
		return nil
	}
	a, b, cc, d := name("a", 0), name("b", 0), name("c", 0), name("d", 0)
	if err := expectErr("t1", "too_many_subscriptions", a, b); err != nil {
		return "", err
	}
	if err := expectErr("t2", "invalid_channel", a, "bad channel"); err != nil {
		return "", err
	}
	// Had either failed request kept a, this would pass the limit.
	if err := c.subscribe(ctx, "t3", cc); err != nil {
		return "", fmt.Errorf("one more channel after failed subscribes (they must take nothing): %w", err)
	}
	if err := expectErr("t4", "too_many_subscriptions", d); err != nil {
		return "", err
	}
	if err := c.subscribe(ctx, "t5", name("f", 0), cc); err != nil {
		return "", fmt.Errorf("re-subscribing at the limit is not an error: %w", err)
	}
	r, err := c.request(ctx, "t6", map[string]any{"op": "unsubscribe", "id": "t6", "channels": []string{cc}})
	if err != nil || r.Op != "unsubscribed" {
		return "", fmt.Errorf("unsubscribe: reply %s, %v", r.Raw, err)
	}
	if err := c.subscribe(ctx, "t7", d); err != nil {
		return "", fmt.Errorf("a slot freed by unsubscribe: %w", err)
	}
	return fmt.Sprintf("limit %d, filled in %d requests", limit, req), nil
}
