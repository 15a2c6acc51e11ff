package conform

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// subscribed dials and subscribes to channels.
func (s *suite) subscribed(ctx context.Context, channels ...string) (*client, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return nil, err
	}
	if err := c.subscribe(ctx, "sub", channels...); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// at matches the message of one produced record.
func at(topic string, p produced) func(Envelope) bool {
	return func(e Envelope) bool {
		return e.Topic == topic && e.Partition != nil && *e.Partition == p.partition && e.Offset != nil && *e.Offset == p.offset
	}
}

func checkKeyChannel(ctx context.Context, s *suite) (string, error) {
	key := s.key("key")
	ch := s.channel(key)
	c, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", err
	}
	defer c.close()
	ts := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	value := []byte(`{"price":"64123.5","size":"0.25"}`)
	p, err := s.prod.send(record{key: &key, value: value, ts: ts})
	if err != nil {
		return "", err
	}
	got, err := c.waitMessages(ctx, "messages on "+ch, 1, channelIs(ch))
	if err != nil {
		return "", err
	}
	m := got[0]
	switch {
	case m.Topic != s.cfg.Topic:
		return "", fmt.Errorf("topic %q, want %q: %s", m.Topic, s.cfg.Topic, m.Raw)
	case m.Partition == nil || *m.Partition != p.partition:
		return "", fmt.Errorf("partition want %d: %s", p.partition, m.Raw)
	case m.Offset == nil || *m.Offset != p.offset:
		return "", fmt.Errorf("offset want %d: %s", p.offset, m.Raw)
	case m.TS == nil || *m.TS != ts.UnixMilli():
		return "", fmt.Errorf("ts want the record timestamp %d: %s", ts.UnixMilli(), m.Raw)
	case !bytes.Equal(m.Data, value):
		return "", fmt.Errorf("data %s, want %s", m.Data, value)
	case m.ID != nil:
		return "", fmt.Errorf("a message carries an id: %s", m.Raw)
	}
	return "", nil
}

func checkEmptyKey(ctx context.Context, s *suite) (string, error) {
	c, err := s.subscribed(ctx, s.cfg.Topic)
	if err != nil {
		return "", err
	}
	defer c.close()
	for _, tc := range []struct {
		name string
		key  *string
	}{
		{"no key", nil},
		{"zero-length key", strp("")},
	} {
		value := fmt.Appendf(nil, `{"run":%q,"case":%q}`, s.run, tc.name)
		p, err := s.prod.send(record{key: tc.key, value: value})
		if err != nil {
			return "", err
		}
		m, err := c.waitFor(ctx, "the record with "+tc.name, at(s.cfg.Topic, p))
		if err != nil {
			return "", fmt.Errorf("%s: %w", tc.name, err)
		}
		if m.Channel != s.cfg.Topic {
			return "", fmt.Errorf("%s: channel %q, want %q", tc.name, m.Channel, s.cfg.Topic)
		}
	}
	return "", nil
}

// checkHeaderOverride produces a record whose header names another channel of its own
// topic, then a plain record with the same key (same partition, later offset) as a
// marker: when the marker arrives, the first record has been routed, so its absence on
// the key channel is real.
func checkHeaderOverride(ctx context.Context, s *suite) (string, error) {
	key := s.key("hdr")
	keyCh := s.channel(key)
	override := s.cfg.Topic + ":" + s.run + "-override-" + key
	c, err := s.subscribed(ctx, keyCh, override)
	if err != nil {
		return "", err
	}
	defer c.close()
	p1, err := s.prod.send(record{key: &key, value: []byte(`{"via":"header"}`), headers: []header{channelHeader(override)}})
	if err != nil {
		return "", err
	}
	p2, err := s.prod.send(record{key: &key, value: []byte(`{"via":"key"}`)})
	if err != nil {
		return "", err
	}
	m, err := c.waitFor(ctx, "the overridden record", at(s.cfg.Topic, p1))
	if err != nil {
		return "", err
	}
	if m.Channel != override {
		return "", fmt.Errorf("channel %q, want the header's %q", m.Channel, override)
	}
	if _, err := c.waitFor(ctx, "the marker record", at(s.cfg.Topic, p2)); err != nil {
		return "", err
	}
	if n := len(c.messages(at(s.cfg.Topic, p1))); n != 1 {
		return "", fmt.Errorf("the overridden record arrived %d times, want once (on %s only, not %s)", n, override, keyCh)
	}
	return "", nil
}

// checkHeaderRule: a `channel` header is obeyed only when it is the record's only one and
// names a valid channel of the record's own topic. Such a record reaches the exact and
// the wildcard subscribers; a record whose header names another topic's channel, is not
// a valid channel, or comes twice reaches nobody, not even its key's channel. Absence is
// proven by order: every record has the same key (one partition), and a plain marker
// produced last must arrive at every client after the others were routed.
func checkHeaderRule(ctx context.Context, s *suite) (string, error) {
	key := s.key("rule")
	keyCh := s.channel(key)
	x := s.cfg.Topic + ":" + s.run + "-rule-x-" + key
	y := s.cfg.Topic + ":" + s.run + "-rule-y-" + key
	foreign := s.run + "-other:" + key
	exact, err := s.subscribed(ctx, x, y, keyCh)
	if err != nil {
		return "", err
	}
	defer exact.close()
	wild, err := s.subscribed(ctx, s.cfg.Topic+":*")
	if err != nil {
		return "", err
	}
	defer wild.close()
	other, err := s.subscribed(ctx, foreign, keyCh)
	if err != nil {
		return "", err
	}
	defer other.close()
	type tc struct {
		name    string
		headers []header
	}
	good := tc{"a header naming " + x, []header{channelHeader(x)}}
	bad := []tc{
		{"a header naming another topic's channel " + foreign, []header{channelHeader(foreign)}},
		{"a header that is not a valid channel", []header{channelHeader(s.cfg.Topic + ":a b")}},
		{"a header naming the wildcard", []header{channelHeader(s.cfg.Topic + ":*")}},
		{"an empty header", []header{channelHeader("")}},
		{"two channel headers", []header{channelHeader(x), channelHeader(y)}},
	}
	pGood, err := s.prod.send(record{key: &key, value: []byte(`{"rule":"good"}`), headers: good.headers})
	if err != nil {
		return "", err
	}
	pBad := make([]produced, len(bad))
	for i, b := range bad {
		if pBad[i], err = s.prod.send(record{key: &key, value: fmt.Appendf(nil, `{"rule":"bad","i":%d}`, i), headers: b.headers}); err != nil {
			return "", err
		}
	}
	pMarker, err := s.prod.send(record{key: &key, value: []byte(`{"rule":"marker"}`)})
	if err != nil {
		return "", err
	}
	clients := []struct {
		name string
		c    *client
	}{{"the subscriber of " + x, exact}, {"the subscriber of " + s.cfg.Topic + ":*", wild}, {"the subscriber of " + foreign, other}}
	for _, cl := range clients {
		if _, err := cl.c.waitFor(ctx, "the marker record", at(s.cfg.Topic, pMarker)); err != nil {
			return "", fmt.Errorf("%s: %w", cl.name, err)
		}
	}
	for i, cl := range clients {
		got := cl.c.messages(at(s.cfg.Topic, pGood))
		want := 1
		if i == 2 {
			want = 0
		}
		if len(got) != want {
			return "", fmt.Errorf("the record with %s reached %s %d times, want %d", good.name, cl.name, len(got), want)
		}
		if want == 1 && got[0].Channel != x {
			return "", fmt.Errorf("the record with %s reached %s on channel %q, want %q", good.name, cl.name, got[0].Channel, x)
		}
		for j, b := range bad {
			if ms := cl.c.messages(at(s.cfg.Topic, pBad[j])); len(ms) > 0 {
				return "", fmt.Errorf("the record with %s reached %s (on channel %q), want nobody", b.name, cl.name, ms[0].Channel)
			}
		}
	}
	return fmt.Sprintf("one record routed by its header, %d with bad headers reached none of 3 clients", len(bad)), nil
}

func checkWildcard(ctx context.Context, s *suite) (string, error) {
	wild := s.cfg.Topic + ":*"
	c, err := s.subscribed(ctx, wild)
	if err != nil {
		return "", err
	}
	defer c.close()
	key := s.key("wild")
	inTopic := s.cfg.Topic + ":" + s.run + "-hdr"
	elsewhere := s.run + "-elsewhere:x"
	type want struct {
		name    string
		rec     record
		channel string // "" = must not arrive
	}
	cases := []want{
		{"keyed record", record{key: &key, value: []byte(`{"w":1}`)}, s.channel(key)},
		{"keyless record", record{value: fmt.Appendf(nil, `{"run":%q}`, s.run)}, s.cfg.Topic},
		{"header channel in the topic", record{key: &key, value: []byte(`{"w":2}`), headers: []header{channelHeader(inTopic)}}, inTopic},
		{"header channel outside the topic", record{key: &key, value: []byte(`{"w":3}`), headers: []header{channelHeader(elsewhere)}}, ""},
		{"marker", record{key: &key, value: []byte(`{"w":4}`)}, s.channel(key)},
	}
	ps := make([]produced, len(cases))
	for i, tc := range cases {
		if ps[i], err = s.prod.send(tc.rec); err != nil {
			return "", err
		}
	}
	for i, tc := range cases {
		if tc.channel == "" {
			continue
		}
		m, err := c.waitFor(ctx, tc.name, at(s.cfg.Topic, ps[i]))
		if err != nil {
			return "", fmt.Errorf("%s on %s: %w", tc.name, wild, err)
		}
		if m.Channel != tc.channel {
			return "", fmt.Errorf("%s: channel %q, want %q", tc.name, m.Channel, tc.channel)
		}
	}
	// The marker shares the partition of the outside record and comes later.
	for i, tc := range cases {
		if tc.channel == "" && len(c.messages(at(s.cfg.Topic, ps[i]))) > 0 {
			return "", fmt.Errorf("%s (channel %s) reached %s", tc.name, elsewhere, wild)
		}
	}
	return "", nil
}

func checkOnceOnly(ctx context.Context, s *suite) (string, error) {
	key := s.key("once")
	ch := s.channel(key)
	c, err := s.subscribed(ctx, ch, s.cfg.Topic+":*")
	if err != nil {
		return "", err
	}
	defer c.close()
	p1, err := s.prod.send(record{key: &key, value: []byte(`{"once":1}`)})
	if err != nil {
		return "", err
	}
	p2, err := s.prod.send(record{key: &key, value: []byte(`{"once":2}`)})
	if err != nil {
		return "", err
	}
	if _, err := c.waitFor(ctx, "the marker record", at(s.cfg.Topic, p2)); err != nil {
		return "", err
	}
	// A late duplicate of the marker would come right behind it.
	time.Sleep(100 * time.Millisecond)
	for _, p := range []produced{p1, p2} {
		if n := len(c.messages(at(s.cfg.Topic, p))); n != 1 {
			return "", fmt.Errorf("offset %d/%d delivered %d times, want once", p.partition, p.offset, n)
		}
	}
	return "", nil
}
