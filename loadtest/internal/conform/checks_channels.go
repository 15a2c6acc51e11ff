package conform

import (
	"bytes"
	"context"
	"encoding/json"
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

// checkHeaderOverride produces a record whose header names another channel, then a plain
// record with the same key (same partition, later offset) as a marker: when the marker
// arrives, the first record has been routed, so its absence on the key channel is real.
func checkHeaderOverride(ctx context.Context, s *suite) (string, error) {
	key := s.key("hdr")
	keyCh := s.channel(key)
	override := s.run + "-override:" + key
	c, err := s.subscribed(ctx, keyCh, override)
	if err != nil {
		return "", err
	}
	defer c.close()
	p1, err := s.prod.send(record{key: &key, value: []byte(`{"via":"header"}`), headers: map[string]string{"channel": override}})
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
		{"header channel in the topic", record{key: &key, value: []byte(`{"w":2}`), headers: map[string]string{"channel": inTopic}}, inTopic},
		{"header channel outside the topic", record{key: &key, value: []byte(`{"w":3}`), headers: map[string]string{"channel": elsewhere}}, ""},
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

func checkData(ctx context.Context, s *suite) (string, error) {
	key := s.key("data")
	ch := s.channel(key)
	c, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", err
	}
	defer c.close()
	str := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	cases := []struct {
		name  string
		value []byte
		want  string
	}{
		{"JSON object with spaces and newlines", []byte("{ \"price\" : \"1.5\",\n  \"size\": [1, 2.50, {\"a\" : null}] }"), `{"price":"1.5","size":[1,2.50,{"a":null}]}`},
		{"JSON array", []byte(" [1, \"two\"] "), `[1,"two"]`},
		{"JSON number", []byte("42"), `42`},
		{"JSON string", []byte(`"quoted"`), `"quoted"`},
		{"JSON true", []byte("true"), `true`},
		{"text with a newline, quotes and a backslash", []byte("hello \"world\"\nline2 \\ end"), str("hello \"world\"\nline2 \\ end")},
		{"truncated JSON", []byte(`{"a":1`), str(`{"a":1`)},
		{"zero-length value", []byte{}, `null`},
		{"null value", nil, `null`},
	}
	ps := make([]produced, len(cases))
	for i, tc := range cases {
		if ps[i], err = s.prod.send(record{key: &key, value: tc.value}); err != nil {
			return "", err
		}
	}
	for i, tc := range cases {
		m, err := c.waitFor(ctx, tc.name, at(s.cfg.Topic, ps[i]))
		if err != nil {
			return "", fmt.Errorf("%s: %w", tc.name, err)
		}
		if !m.HasData {
			return "", fmt.Errorf("%s: no data field: %s", tc.name, m.Raw)
		}
		if string(m.Data) != tc.want {
			return "", fmt.Errorf("%s: data %s, want %s", tc.name, m.Data, tc.want)
		}
	}
	return fmt.Sprintf("%d values", len(cases)), nil
}

func checkOffsetOrder(ctx context.Context, s *suite) (string, error) {
	const keys, perKey = 8, 50
	var channels []string
	var ks []string
	for range keys {
		k := s.key("order")
		ks = append(ks, k)
		channels = append(channels, s.channel(k))
	}
	c, err := s.subscribed(ctx, channels...)
	if err != nil {
		return "", err
	}
	defer c.close()
	var rs []record
	for i := range perKey {
		for _, k := range ks {
			rs = append(rs, record{key: &k, value: fmt.Appendf(nil, `{"i":%d}`, i)})
		}
	}
	ps, err := s.prod.sendBurst(rs)
	if err != nil {
		return "", err
	}
	want := map[produced]bool{}
	for _, p := range ps {
		want[p] = true
	}
	mine := func(e Envelope) bool {
		return e.Partition != nil && e.Offset != nil && e.Topic == s.cfg.Topic && want[produced{*e.Partition, *e.Offset}]
	}
	got, err := c.waitMessages(ctx, "burst messages", len(rs), mine)
	if err != nil {
		return "", err
	}
	last := map[int32]int64{}
	seen := map[produced]bool{}
	for _, m := range got {
		p := produced{*m.Partition, *m.Offset}
		if seen[p] {
			return "", fmt.Errorf("partition %d offset %d delivered twice", p.partition, p.offset)
		}
		seen[p] = true
		if prev, ok := last[p.partition]; ok && p.offset <= prev {
			return "", fmt.Errorf("partition %d: offset %d after %d", p.partition, p.offset, prev)
		}
		last[p.partition] = p.offset
	}
	return fmt.Sprintf("%d records over %d partitions in order", len(got), len(last)), nil
}

// checkBatching sends bursts to one channel and looks at how their messages were framed.
func checkBatching(ctx context.Context, s *suite) (string, error) {
	key := s.key("batch")
	ch := s.channel(key)
	c, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", err
	}
	defer c.close()
	const n = 300
	total := 0
	for attempt := 1; attempt <= 3; attempt++ {
		rs := make([]record, n)
		for i := range rs {
			rs[i] = record{key: &key, value: fmt.Appendf(nil, `{"attempt":%d,"i":%d,"pad":"%0100d"}`, attempt, i, i)}
		}
		if _, err := s.prod.sendBurst(rs); err != nil {
			return "", err
		}
		total += n
		if _, err := c.waitMessages(ctx, "burst messages", total, channelIs(ch)); err != nil {
			return "", err
		}
		frames := map[int]bool{}
		maxLines := 0
		for _, it := range c.items() {
			if it.env.Op == "message" && it.env.Channel == ch {
				frames[it.frame] = true
				maxLines = max(maxLines, it.frameLines)
			}
		}
		detail := fmt.Sprintf("%d messages in %d frames, up to %d per frame", total, len(frames), maxLines)
		switch {
		case !s.cfg.ExpectBatching && maxLines > 1:
			return "", fmt.Errorf("batching off, but %s", detail)
		case !s.cfg.ExpectBatching:
			return detail, nil
		case maxLines > 1:
			return detail, nil
		}
	}
	return "", fmt.Errorf("batching on, but %d messages of bursts came one per frame", total)
}

// checkBigMessage sends one record larger than WS_BATCH_MAX_BYTES between small ones:
// it must arrive whole, alone in its frame, and the small ones around it too.
func checkBigMessage(ctx context.Context, s *suite) (string, error) {
	key := s.key("big")
	ch := s.channel(key)
	c, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", err
	}
	defer c.close()
	size := min(s.cfg.BatchMaxBytes+1024, 900<<10) // stay under Kafka's default 1 MiB
	big := fmt.Appendf(nil, `{"pad":"%s"}`, bytes.Repeat([]byte("x"), size))
	var rs []record
	for i := range 20 {
		rs = append(rs, record{key: &key, value: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	rs = append(rs, record{key: &key, value: big})
	for i := 20; i < 40; i++ {
		rs = append(rs, record{key: &key, value: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	ps, err := s.prod.sendBurst(rs)
	if err != nil {
		return "", err
	}
	if _, err := c.waitMessages(ctx, "burst messages", len(rs), channelIs(ch)); err != nil {
		return "", err
	}
	bigAt := ps[20]
	for _, it := range c.items() {
		if it.env.Op != "message" || !at(s.cfg.Topic, bigAt)(it.env) {
			continue
		}
		if !bytes.Equal(it.env.Data, big) {
			return "", fmt.Errorf("the %d-byte record arrived changed (%d bytes of data)", len(big), len(it.env.Data))
		}
		if it.frameLines != 1 {
			return "", fmt.Errorf("the %d-byte record shared its frame with %d other objects (WS_BATCH_MAX_BYTES %d)", len(big), it.frameLines-1, s.cfg.BatchMaxBytes)
		}
		return fmt.Sprintf("%d-byte record alone in its frame, %d small ones around it", len(big), len(rs)-1), nil
	}
	return "", fmt.Errorf("the %d-byte record did not arrive", len(big))
}
