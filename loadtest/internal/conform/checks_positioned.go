package conform

// Checks of the positioned subscribe and of marks: what a client keeping positions starts
// from and what keeps them fresh.

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// positioned sends a positioned subscribe and checks its reply: the channels, the
// topic's epoch and a position for every partition. It returns the reply and its positions.
func (s *suite) positioned(ctx context.Context, c *client, id string, parts []int32, channels ...string) (posLine, positions, error) {
	r, err := c.request(ctx, id, positionedRequest(id, channels))
	if err != nil {
		return posLine{}, nil, err
	}
	l, err := s.checkSubscribedReply(r, parts, channels)
	if err != nil {
		return posLine{}, nil, err
	}
	pos, _ := l.topicPositions() // checked
	return l, pos, nil
}

// checkSubscribedReply checks the reply to a positioned subscribe.
func (s *suite) checkSubscribedReply(r Envelope, parts []int32, channels []string) (posLine, error) {
	topic := s.cfg.Topic
	if r.Op != "subscribed" {
		return posLine{}, fmt.Errorf("positioned subscribe %v: reply %s", channels, r.Raw)
	}
	l, err := parsePosLine(r)
	if err != nil {
		return l, err
	}
	if !slices.Equal(l.Channels, channels) {
		return l, fmt.Errorf("positioned subscribe %v: channels %v in %s", channels, l.Channels, clip(r.Raw))
	}
	if l.Recovering != nil && *l.Recovering {
		return l, fmt.Errorf("a positioned subscribe without resume says recovering: %s", clip(r.Raw))
	}
	if l.Epochs[topic] == "" {
		return l, fmt.Errorf("no epoch of %s (a non-empty string in \"epochs\"): %s", topic, clip(r.Raw))
	}
	pos, err := l.topicPositions()
	if err != nil {
		return l, err
	}
	if err := checkEveryPartition(pos, topic, parts); err != nil {
		return l, fmt.Errorf("%w: %s", err, clip(r.Raw))
	}
	return l, nil
}

// checkEveryPartition checks that pos holds a position of at least -1 for exactly the
// topic's partitions.
func checkEveryPartition(pos positions, topic string, parts []int32) error {
	got := pos[topic]
	for _, p := range parts {
		off, ok := got[p]
		if !ok {
			return fmt.Errorf("no position of %s partition %d (the topic has %d partitions)", topic, p, len(parts))
		}
		if off < -1 {
			return fmt.Errorf("position %d of %s/%d is below -1", off, topic, p)
		}
	}
	if len(got) != len(parts) {
		return fmt.Errorf("positions of %s name %d partitions, the topic has %d", topic, len(got), len(parts))
	}
	return nil
}

func checkPositioned(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	key := s.key("pos")
	ch := s.channel(key)
	otherTopic := s.run + "-unconsumed"
	other := otherTopic + ":x"
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	l, pos, err := s.positioned(ctx, c, "p1", kv.parts, ch, other)
	if err != nil {
		return "", err
	}
	if _, ok := l.Epochs[otherTopic]; ok {
		return "", fmt.Errorf("an epoch for %s, a topic the server does not consume: %s", otherTopic, clip(l.raw))
	}
	if _, ok := pos[otherTopic]; ok {
		return "", fmt.Errorf("positions for %s, a topic the server does not consume: %s", otherTopic, clip(l.raw))
	}
	hwm, err := kv.newest()
	if err != nil {
		return "", err
	}
	for p, off := range pos[topic] {
		if off > hwm[p]-1 {
			return "", fmt.Errorf("position %d of %s/%d is past the log's last offset %d", off, topic, p, hwm[p]-1)
		}
	}
	// A record produced now is live: it comes after the reply's position.
	pr, err := s.prod.send(record{key: &key, value: []byte(`{"positioned":1}`)})
	if err != nil {
		return "", err
	}
	if _, err := c.waitFor(ctx, "the record produced after the reply", at(topic, pr)); err != nil {
		return "", err
	}
	if pos[topic][pr.partition] >= pr.offset {
		return "", fmt.Errorf("position %d of %s/%d, but the record at %d produced after the reply is live", pos[topic][pr.partition], topic, pr.partition, pr.offset)
	}
	// The same connection subscribes again: its positions now cover the record it had.
	ch2 := s.channel(s.key("pos"))
	l2, pos2, err := s.positioned(ctx, c, "p2", kv.parts, ch2)
	if err != nil {
		return "", err
	}
	if epoch2 := l2.Epochs[topic]; epoch2 != l.Epochs[topic] {
		return "", fmt.Errorf("epoch of %s changed from %q to %q between two subscribes", topic, l.Epochs[topic], epoch2)
	}
	if got := pos2[topic][pr.partition]; got < pr.offset {
		return "", fmt.Errorf("a later positioned subscribe answers position %d of %s/%d, before the record at %d the connection already had", got, topic, pr.partition, pr.offset)
	}
	return fmt.Sprintf("epoch %q, %d partitions", l.Epochs[topic], len(kv.parts)), nil
}

func markBudget(c Config) time.Duration { return max(c.CheckTimeout, 4*c.MarkInterval+5*time.Second) }

// checkMarks subscribes positioned to a quiet key and a busy one, produces to other keys
// across the partitions and to the busy key, and waits for a mark past every record: the
// quiet subscription keeps fresh positions without traffic of its own. Every mark must
// name every partition, never go back, and agree with the messages around it: those before
// it are at or below its positions, those after it above. A plain subscriber gets none.
func checkMarks(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	quiet := s.channel(s.key("markq"))
	busyKey := s.key("markb")
	busy := s.channel(busyKey)
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if _, _, err := s.positioned(ctx, c, "m", kv.parts, quiet, busy); err != nil {
		return "", err
	}
	plain, err := s.subscribed(ctx, busy)
	if err != nil {
		return "", err
	}
	defer plain.close()
	var rs []record
	for i := range 16 {
		k := s.key("markx")
		rs = append(rs, record{key: &k, value: fmt.Appendf(nil, `{"mark":%d}`, i)})
	}
	for i := range 4 {
		rs = append(rs, record{key: &busyKey, value: fmt.Appendf(nil, `{"busy":%d}`, i)})
	}
	start := time.Now()
	ps, err := s.prod.sendBurst(rs)
	if err != nil {
		return "", err
	}
	want := map[int32]int64{}
	for _, p := range ps {
		want[p.partition] = max(want[p.partition], p.offset)
	}
	if _, err := c.waitMessages(ctx, "records of "+busy, 4, channelIs(busy)); err != nil {
		return "", err
	}
	if _, err := c.waitFor(ctx, fmt.Sprintf("a mark past the %d records produced (WS_MARK_INTERVAL %v)", len(rs), s.cfg.MarkInterval), func(e Envelope) bool {
		if e.Op != "mark" {
			return false
		}
		l, err := parsePosLine(e)
		if err != nil || l.Topic != topic {
			return false
		}
		mp, err := l.markPositions()
		if err != nil {
			return false
		}
		for p, off := range want {
			if mp[p] < off {
				return false
			}
		}
		return true
	}); err != nil {
		return "", err
	}
	took := time.Since(start)
	items := c.items()
	last := map[int32]int64{}
	marks := 0
	for i, it := range items {
		if it.env.Op != "mark" {
			continue
		}
		marks++
		l, err := parsePosLine(it.env)
		if err != nil {
			return "", err
		}
		if l.Topic != topic {
			return "", fmt.Errorf("a mark of topic %q to a subscriber of %s only: %s", l.Topic, topic, clip(l.raw))
		}
		mp, err := l.markPositions()
		if err != nil {
			return "", err
		}
		if err := checkEveryPartition(positions{topic: mp}, topic, kv.parts); err != nil {
			return "", fmt.Errorf("mark: %w: %s", err, clip(l.raw))
		}
		for p, off := range mp {
			if prev, ok := last[p]; ok && off < prev {
				return "", fmt.Errorf("mark of %s/%d went back from %d to %d", topic, p, prev, off)
			}
			last[p] = off
		}
		for j, m := range items {
			if m.env.Op != "message" || m.env.Topic != topic || m.env.Partition == nil || m.env.Offset == nil {
				continue
			}
			part, off := *m.env.Partition, *m.env.Offset
			if j < i && off > mp[part] {
				return "", fmt.Errorf("the record at %d/%d arrived before a mark at %d: a mark must pass what was queued before it: %s", part, off, mp[part], clip(l.raw))
			}
			if j > i && off <= mp[part] {
				return "", fmt.Errorf("the record at %d/%d arrived after a mark at %d: a client taking the mark as its position would skip it: %s", part, off, mp[part], clip(l.raw))
			}
		}
	}
	// The plain subscriber's copy would have gone out with the positioned one's.
	if err := plain.ping(ctx, "after-marks"); err != nil {
		return "", err
	}
	for _, it := range plain.items() {
		if it.env.Op == "mark" {
			return "", fmt.Errorf("a subscriber without positioned got a mark: %s", clip(it.env.Raw))
		}
	}
	return fmt.Sprintf("%d marks; the first past %d records after %v", marks, len(rs), took.Round(time.Millisecond)), nil
}
