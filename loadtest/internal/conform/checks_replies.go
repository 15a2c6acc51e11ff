package conform

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// checkDelivery subscribes and produces until a record arrives: it proves the server
// consumes the topic before the checks that count on delivery run.
func checkDelivery(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	key := s.key("delivery")
	if err := c.subscribe(ctx, "d1", s.channel(key)); err != nil {
		return "", err
	}
	start := time.Now()
	for i := 0; ; i++ {
		if _, err := s.prod.send(record{key: &key, value: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			return "", err
		}
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := c.waitMessages(wctx, "messages on "+s.channel(key), 1, channelIs(s.channel(key)))
		cancel()
		if err == nil {
			return fmt.Sprintf("after %v and %d records", time.Since(start).Round(time.Millisecond), i+1), nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("nothing delivered on %s after %d records: %w", s.channel(key), i+1, err)
		}
	}
}

func checkPing(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.ping(ctx, "p1"); err != nil {
		return "", err
	}
	long := strings.Repeat("i", 64)
	if err := c.ping(ctx, long); err != nil {
		return "", fmt.Errorf("64-byte id: %w", err)
	}
	if err := c.send(ctx, map[string]any{"op": "ping", "id": "p-extra", "client_ts": 1, "meta": map[string]any{"a": []int{1}}}); err != nil {
		return "", err
	}
	if r, err := c.reply(ctx, "p-extra"); err != nil || r.Op != "pong" {
		return "", fmt.Errorf("ping with unknown fields: reply %s, %v; want pong (unknown fields are ignored)", r.Raw, err)
	}
	if err := c.send(ctx, map[string]any{"op": "ping"}); err != nil {
		return "", err
	}
	r, err := c.waitFor(ctx, "pong without id", func(e Envelope) bool { return e.Op != "message" && e.ID == nil })
	if err != nil {
		return "", err
	}
	if r.Op != "pong" {
		return "", fmt.Errorf("ping without id: reply %s, want pong", r.Raw)
	}
	if err := c.ping(ctx, ""); err != nil {
		return "", fmt.Errorf("empty id must be echoed as \"\": %w", err)
	}
	return "", nil
}

func checkSubscribeReplies(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	a, b, never := s.channel(s.key("a")), s.channel(s.key("b")), s.channel(s.key("never"))
	steps := []struct {
		op, id   string
		channels []string
		wantOp   string
		want     []string
	}{
		{"subscribe", "s1", []string{a, b, a}, "subscribed", []string{a, b}},
		{"subscribe", "s2", []string{b}, "subscribed", []string{b}},
		{"unsubscribe", "u1", []string{b, never, b}, "unsubscribed", []string{b, never}},
		{"unsubscribe", "u2", []string{never}, "unsubscribed", []string{never}},
		{"subscribe", "", []string{b, a}, "subscribed", []string{b, a}},
		{"unsubscribe", "", []string{a}, "unsubscribed", []string{a}},
	}
	for _, st := range steps {
		req := map[string]any{"op": st.op, "channels": st.channels}
		if st.id != "" {
			req["id"] = st.id
		}
		if err := c.send(ctx, req); err != nil {
			return "", err
		}
		var r Envelope
		if st.id != "" {
			r, err = c.reply(ctx, st.id)
		} else {
			r, err = c.waitFor(ctx, "reply without id", func(e Envelope) bool { return e.Op != "message" && e.ID == nil })
		}
		if err != nil {
			return "", fmt.Errorf("%s %v: %w", st.op, st.channels, err)
		}
		if r.Op != st.wantOp || !slices.Equal(r.Channels, st.want) {
			return "", fmt.Errorf("%s id %q %v: reply %s, want op %s channels %v", st.op, st.id, st.channels, r.Raw, st.wantOp, st.want)
		}
	}
	return "", nil
}

func checkReplyOrder(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	ch := s.channel(s.key("order"))
	reqs := []map[string]any{
		{"op": "ping", "id": "o1"},
		{"op": "subscribe", "id": "o2", "channels": []string{ch}},
		{"op": "nope", "id": "o3"},
		{"op": "unsubscribe", "id": "o4", "channels": []string{ch}},
		{"op": "subscribe", "id": "o5", "channels": []string{"bad channel"}},
		{"op": "ping", "id": "o6"},
	}
	for _, r := range reqs {
		if err := c.send(ctx, r); err != nil {
			return "", err
		}
	}
	if _, err := c.reply(ctx, "o6"); err != nil {
		return "", err
	}
	var ids []string
	for _, it := range c.items() {
		if it.env.Op != "message" && it.env.ID != nil {
			ids = append(ids, *it.env.ID)
		}
	}
	want := []string{"o1", "o2", "o3", "o4", "o5", "o6"}
	if !slices.Equal(ids, want) {
		return "", fmt.Errorf("reply ids in order %v, want %v", ids, want)
	}
	return "", nil
}

// checkUnsubscribeStops unsubscribes while records of the channel stream in: after the
// unsubscribed reply, none may arrive. A second connection that stays subscribed tells
// when the server has handled every record.
func checkUnsubscribeStops(ctx context.Context, s *suite) (string, error) {
	key := s.key("unsub")
	ch := s.channel(key)
	leaver, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer leaver.close()
	stayer, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer stayer.close()
	for _, c := range []*client{leaver, stayer} {
		if err := c.subscribe(ctx, "s", ch); err != nil {
			return "", err
		}
	}
	burst := func(n int) error {
		rs := make([]record, n)
		for i := range rs {
			rs[i] = record{key: &key, value: fmt.Appendf(nil, `{"i":%d}`, i)}
		}
		_, err := s.prod.sendBurst(rs)
		return err
	}
	const n = 100
	if err := burst(n); err != nil {
		return "", err
	}
	if _, err := leaver.waitMessages(ctx, "messages on "+ch, 1, channelIs(ch)); err != nil {
		return "", err
	}
	// Unsubscribe while a second burst is on its way.
	var wg sync.WaitGroup
	var burstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		burstErr = burst(n)
	}()
	r, err := leaver.request(ctx, "u", map[string]any{"op": "unsubscribe", "id": "u", "channels": []string{ch}})
	wg.Wait()
	if err != nil {
		return "", err
	}
	if burstErr != nil {
		return "", burstErr
	}
	if r.Op != "unsubscribed" {
		return "", fmt.Errorf("unsubscribe: reply %s", r.Raw)
	}
	if _, err := stayer.waitMessages(ctx, "messages on "+ch, 2*n, channelIs(ch)); err != nil {
		return "", fmt.Errorf("the subscribed connection: %w", err)
	}
	time.Sleep(200 * time.Millisecond)
	after, before := 0, 0
	seenReply := false
	for _, it := range leaver.items() {
		switch {
		case it.env.Op == "unsubscribed":
			seenReply = true
		case it.env.Op == "message" && it.env.Channel == ch && seenReply:
			after++
		case it.env.Op == "message" && it.env.Channel == ch:
			before++
		}
	}
	if after > 0 {
		return "", fmt.Errorf("%d messages of %s after the unsubscribed reply (%d before)", after, ch, before)
	}
	return fmt.Sprintf("%d of %d delivered before the reply, none after", before, 2*n), nil
}

// checkReplyBytes compares whole reply lines with the protocol's encoding: fixed field
// order, and strings escaped only where JSON requires (`<`, `>`, `&`, U+2028 and DEL raw;
// `\t` short; other control characters as \u00XX).
func checkReplyBytes(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	ch := s.cfg.Topic + ":<x>&y"
	ctl := "c\tt\x01l\u2028\x7f"
	cases := []struct {
		name, frame, id, want string
	}{
		{"pong, < > & in the id", `{"op":"ping","id":"<a&b>"}`, "<a&b>", `{"op":"pong","id":"<a&b>"}`},
		{"pong, control characters in the id", `{"op":"ping","id":"c\tt\u0001l\u2028` + "\x7f" + `"}`, ctl, `{"op":"pong","id":"c\tt\u0001l` + "\u2028\x7f" + `"}`},
		{"subscribed", `{"op":"subscribe","id":"<s>","channels":["` + ch + `","` + ch + `"]}`, "<s>", `{"op":"subscribed","id":"<s>","channels":["` + ch + `"]}`},
		{"unsubscribed", `{"op":"unsubscribe","id":"<u>","channels":["` + ch + `"]}`, "<u>", `{"op":"unsubscribed","id":"<u>","channels":["` + ch + `"]}`},
		{"error", `{"op":"<op>","id":"<e>"}`, "<e>", `{"op":"error","id":"<e>","code":"unknown_op","message":"unknown op \"<op>\""}`},
		{"pong without id", `{"op":"ping"}`, "", `{"op":"pong"}`},
		{"error without id", `{"op":"nope"}`, "", `{"op":"error","code":"unknown_op","message":"unknown op \"nope\""}`},
	}
	for _, tc := range cases {
		if err := c.sendRaw(ctx, websocket.MessageText, []byte(tc.frame)); err != nil {
			return "", err
		}
		var r Envelope
		if tc.id != "" {
			r, err = c.reply(ctx, tc.id)
		} else {
			r, err = c.waitFor(ctx, "reply without id", func(e Envelope) bool { return e.Op != "message" && e.ID == nil })
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", tc.name, err)
		}
		if string(r.Raw) != tc.want {
			return "", fmt.Errorf("%s: reply %s, want exactly %s", tc.name, r.Raw, tc.want)
		}
	}
	return fmt.Sprintf("%d replies byte for byte", len(cases)), nil
}
