package conform

// Checks of what a message carries: its data, its order, how it is framed, and what stands
// in for a record too large to send.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

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

// bigProducer returns a producer whose cap on one record is above WS_MAX_RECORD_BYTES,
// made on first use. It sends one record at a time (see newProducer).
func (s *suite) bigProducer() (*producer, error) {
	if s.bigProd != nil {
		return s.bigProd, nil
	}
	p, err := newProducer(s.cfg.Brokers, s.cfg.Topic, s.cfg.MaxRecordBytes+64<<10)
	if err != nil {
		return nil, err
	}
	s.bigProd = p
	return p, nil
}

// paddedValue is a compact JSON object of exactly size bytes (size >= 12).
func paddedValue(size int) []byte {
	const head, tail = `{"pad":"`, `"}`
	b := make([]byte, 0, size)
	b = append(b, head...)
	for len(b) < size-len(tail) {
		b = append(b, 'x')
	}
	return append(b, tail...)
}

// checkTooLarge produces a record of exactly WS_MAX_RECORD_BYTES, one a byte longer and
// a marker, all with one key: the first arrives as a message, the second as exactly the
// skipped line of the protocol, at its offset, to the channel's subscriber, to a
// wildcard subscriber and once to a subscriber of both alike.
func checkTooLarge(ctx context.Context, s *suite) (string, error) {
	key := s.key("large")
	ch := s.channel(key)
	exact, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", err
	}
	defer exact.close()
	wild, err := s.subscribed(ctx, s.cfg.Topic+":*")
	if err != nil {
		return "", err
	}
	defer wild.close()
	both, err := s.subscribed(ctx, ch, s.cfg.Topic+":*")
	if err != nil {
		return "", err
	}
	defer both.close()
	p, err := s.bigProducer()
	if err != nil {
		return "", err
	}
	maxBytes := s.cfg.MaxRecordBytes
	atMax := paddedValue(maxBytes)
	over := paddedValue(maxBytes + 1)
	ts := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	pMax, err := p.send(record{key: &key, value: atMax, ts: ts})
	if err != nil {
		return "", fmt.Errorf("a record of %d bytes (WS_MAX_RECORD_BYTES): %w", maxBytes, err)
	}
	pOver, err := p.send(record{key: &key, value: over, ts: ts})
	if err != nil {
		return "", fmt.Errorf("a record of %d bytes: %w (the broker must accept a record one byte over WS_MAX_RECORD_BYTES: lower it on the server and pass it as --max-record-bytes)", maxBytes+1, err)
	}
	pMarker, err := p.send(record{key: &key, value: []byte(`{"large":"marker"}`)})
	if err != nil {
		return "", err
	}
	want := fmt.Sprintf(`{"op":"skipped","channel":%q,"topic":%q,"partition":%d,"offset":%d,"ts":%d,"reason":"too_large","size":%d}`,
		ch, s.cfg.Topic, pOver.partition, pOver.offset, ts.UnixMilli(), maxBytes+1)
	for _, cl := range []struct {
		name string
		c    *client
	}{{"the subscriber of " + ch, exact}, {"the subscriber of " + s.cfg.Topic + ":*", wild}, {"the subscriber of both", both}} {
		if _, err := cl.c.waitFor(ctx, "the marker record", at(s.cfg.Topic, pMarker)); err != nil {
			return "", fmt.Errorf("%s: %w", cl.name, err)
		}
		var atMaxSeen, skipped int
		var order []string
		for _, it := range cl.c.items() {
			e := it.env
			switch {
			case e.Op == "message" && at(s.cfg.Topic, pMax)(e):
				atMaxSeen++
				order = append(order, "max")
				if !bytes.Equal(e.Data, atMax) {
					return "", fmt.Errorf("%s: the %d-byte record arrived changed (%d bytes of data)", cl.name, maxBytes, len(e.Data))
				}
			case at(s.cfg.Topic, pOver)(e):
				if e.Op != "skipped" {
					return "", fmt.Errorf("%s: the %d-byte record (WS_MAX_RECORD_BYTES %d) arrived as op %q, want skipped", cl.name, maxBytes+1, maxBytes, e.Op)
				}
				if string(e.Raw) != want {
					return "", fmt.Errorf("%s: skipped line %s, want exactly %s", cl.name, e.Raw, want)
				}
				skipped++
				order = append(order, "skipped")
			case e.Op == "message" && at(s.cfg.Topic, pMarker)(e):
				order = append(order, "marker")
			}
		}
		if atMaxSeen != 1 || skipped != 1 || strings.Join(order, ",") != "max,skipped,marker" {
			return "", fmt.Errorf("%s: received %v, want the %d-byte message, the skipped line, the marker, once each in offset order", cl.name, order, maxBytes)
		}
	}
	return fmt.Sprintf("%d bytes delivered, %d bytes announced as skipped, to 3 subscribers, once each", maxBytes, maxBytes+1), nil
}
