package conform

// The steps every resume check takes: a first connection that subscribes positioned and
// receives records, a resume on a new connection, and the check of what that connection
// got against what it should have.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// firstConn is connection A of a resume check: subscribed positioned, it has received
// the records produced after its subscribed reply.
type firstConn struct {
	*client
	epoch   string              // the topic's epoch in the subscribed reply
	pos     positions           // the subscribed reply's positions
	before  []produced          // the records produced after the reply
	got     []Envelope          // their messages, in the order A received them
	channel map[produced]string // every record the check produced and its channel
}

// firstConnection dials A, subscribes it positioned to channels, produces rs one at a
// time and waits until A has received them all.
func (s *suite) firstConnection(ctx context.Context, kv *kafkaView, channels []string, rs []record) (_ *firstConn, err error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	a := &firstConn{client: c, channel: map[produced]string{}}
	l, pos, err := s.positioned(ctx, c, "a", kv.parts, channels...)
	if err != nil {
		return nil, err
	}
	a.epoch, a.pos = l.Epochs[s.cfg.Topic], pos
	if a.before, err = s.sendEach(rs, a.channel); err != nil {
		return nil, err
	}
	if a.got, err = c.waitMessages(ctx, "records on the first connection", len(a.before), inSet(s.cfg.Topic, a.before)); err != nil {
		return nil, err
	}
	return a, nil
}

// resumed is the outcome of a resume: its subscribed reply and its recovered line, and
// where they are in the client's log.
type resumed struct {
	sub, rec       posLine
	subIdx, recIdx int
	recPos         positions
	pongIdx        int // the ping sent right after the resume; -1 if none
}

// resume sends a subscribe with resume and waits for its subscribed reply and recovered
// line. With pingAfter, a ping follows the resume at once, and its pong is awaited too.
func (s *suite) resume(ctx context.Context, c *client, id string, channels []string, resume map[string]any, parts []int32, pingAfter bool) (resumed, error) {
	return s.resumeRequest(ctx, c, id, map[string]any{"op": "subscribe", "id": id, "channels": channels, "resume": resume}, parts, pingAfter)
}

// resumeRequest is resume with the whole subscribe request given, for a resume that
// carries more than its channels (conflate).
func (s *suite) resumeRequest(ctx context.Context, c *client, id string, req map[string]any, parts []int32, pingAfter bool) (resumed, error) {
	topic := s.cfg.Topic
	if err := c.send(ctx, req); err != nil {
		return resumed{}, err
	}
	pingID := id + "-ping"
	if pingAfter {
		if err := c.send(ctx, map[string]any{"op": "ping", "id": pingID}); err != nil {
			return resumed{}, err
		}
	}
	b, _ := json.Marshal(req)
	r, err := c.reply(ctx, id)
	if err != nil {
		return resumed{}, fmt.Errorf("resume %s: %w", clip(b), err)
	}
	if r.Op != "subscribed" {
		return resumed{}, fmt.Errorf("resume %s: reply %s", clip(b), r.Raw)
	}
	res := resumed{pongIdx: -1}
	if res.sub, err = parsePosLine(r); err != nil {
		return res, err
	}
	if res.sub.Recovering == nil || !*res.sub.Recovering {
		return res, fmt.Errorf("the subscribed reply to a resume lacks \"recovering\":true: %s", clip(r.Raw))
	}
	if res.sub.Epochs[topic] == "" {
		return res, fmt.Errorf("the subscribed reply to a resume has no epoch of %s: %s", topic, clip(r.Raw))
	}
	e, err := c.waitFor(ctx, "the recovered line of "+id, func(e Envelope) bool { return e.Op == "recovered" && e.IDIs(id) })
	if err != nil {
		return res, err
	}
	if res.rec, err = parsePosLine(e); err != nil {
		return res, err
	}
	l := res.rec
	switch {
	case l.Recovered == nil:
		return res, fmt.Errorf("recovered line without a boolean \"recovered\": %s", clip(e.Raw))
	case l.Replayed == nil || *l.Replayed < 0:
		return res, fmt.Errorf("recovered line without a count \"replayed\": %s", clip(e.Raw))
	case *l.Recovered && (l.Source == nil || (*l.Source != sourceMemory && *l.Source != sourceKafka)):
		return res, fmt.Errorf("recovered line without source memory or kafka: %s", clip(e.Raw))
	case !*l.Recovered && (l.Reason == nil || *l.Reason == ""):
		return res, fmt.Errorf("a not-recovered line without a reason: %s", clip(e.Raw))
	case !*l.Recovered && *l.Replayed != 0:
		return res, fmt.Errorf("a not-recovered line with replayed %d, want 0 (nothing is replayed): %s", *l.Replayed, clip(e.Raw))
	case l.Epochs[topic] != res.sub.Epochs[topic]:
		return res, fmt.Errorf("the recovered line's epoch of %s %q differs from the subscribed reply's %q", topic, l.Epochs[topic], res.sub.Epochs[topic])
	}
	if res.recPos, err = l.topicPositions(); err != nil {
		return res, fmt.Errorf("recovered line: %w", err)
	}
	if err := checkEveryPartition(res.recPos, topic, parts); err != nil {
		return res, fmt.Errorf("recovered line: %w: %s", err, clip(e.Raw))
	}
	if pingAfter {
		p, err := c.reply(ctx, pingID)
		if err != nil {
			return res, err
		}
		if p.Op != "pong" {
			return res, fmt.Errorf("ping after a resume: reply %s", p.Raw)
		}
	}
	res.subIdx, res.recIdx = -1, -1
	for i, it := range c.items() {
		switch {
		case it.env.Op == "subscribed" && it.env.IDIs(id) && res.subIdx < 0:
			res.subIdx = i
		case it.env.Op == "recovered" && it.env.IDIs(id) && res.recIdx < 0:
			res.recIdx = i
		case it.env.Op == "pong" && it.env.IDIs(pingID) && res.pongIdx < 0:
			res.pongIdx = i
		}
	}
	if res.recIdx < res.subIdx {
		return res, errors.New("the recovered line came before the subscribed reply")
	}
	if pingAfter && res.pongIdx < res.recIdx {
		return res, errors.New("the pong to a ping sent after the resume came before the recovered line: requests after a resume are answered after it, in order")
	}
	return res, nil
}

// dialResume dials a new connection and resumes on it as resume does; the connection is
// returned open unless the resume failed.
func (s *suite) dialResume(ctx context.Context, id string, channels []string, resume map[string]any, parts []int32, pingAfter bool) (*client, resumed, error) {
	b, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return nil, resumed{}, err
	}
	r, err := s.resume(ctx, b, id, channels, resume, parts, pingAfter)
	if err != nil {
		b.close()
		return nil, r, err
	}
	return b, r, nil
}

// sendLive produces rs one at a time after a resume's recovered line, notes their
// channels, and waits until b has received them all.
func (s *suite) sendLive(ctx context.Context, b *client, what string, rs []record, channel map[produced]string) ([]produced, error) {
	live, err := s.sendEach(rs, channel)
	if err != nil {
		return nil, err
	}
	if _, err := b.waitMessages(ctx, what, len(live), inSet(s.cfg.Topic, live)); err != nil {
		return nil, err
	}
	return live, nil
}

// replayWant is what a resumed client must receive of the check's records.
type replayWant struct {
	replay []produced // once each, before the recovered line, at or below its positions
	live   []produced // once each, after the recovered line, above its positions
	absent []produced // never
	// channel is every record of the check and its channel; messages of other records
	// (other traffic of a wildcard) are ignored but counted as replayed.
	channel map[produced]string
	// source is the recovered line's source, when known.
	source string
}

// verifyResume checks a resumed client's log: the check's records once each in
// per-partition offset order on their channels, the replay before the recovered line and
// within its positions, live records after it, a replayed count that matches.
func (s *suite) verifyResume(c *client, r resumed, w replayWant) (int, error) {
	if !*r.rec.Recovered {
		return 0, fmt.Errorf("not recovered: %s", clip(r.rec.raw))
	}
	if w.source != "" && *r.rec.Source != w.source {
		return 0, fmt.Errorf("source %q, want %q (WS_HISTORY_RECORDS %d): %s", *r.rec.Source, w.source, s.cfg.HistoryRecords, clip(r.rec.raw))
	}
	replayed, err := s.verifyDelivery(c.items(), r, w)
	if err != nil {
		return 0, err
	}
	if replayed != *r.rec.Replayed {
		return 0, fmt.Errorf("%d records came before the recovered line, which says replayed %d", replayed, *r.rec.Replayed)
	}
	return replayed, nil
}

// verifyDelivery checks which of the check's records a resumed client got, and where; it
// returns how many records of any kind came before the recovered line.
func (s *suite) verifyDelivery(items []item, r resumed, w replayWant) (int, error) {
	topic := s.cfg.Topic
	kind := map[produced]string{}
	for _, p := range w.replay {
		kind[p] = "replay"
	}
	for _, p := range w.live {
		kind[p] = "live"
	}
	for _, p := range w.absent {
		kind[p] = "absent"
	}
	seen := map[produced]int{}
	last := map[int32]int64{}
	before := 0
	for i, it := range items {
		e := it.env
		if (e.Op != "message" && e.Op != "skipped") || e.Partition == nil || e.Offset == nil {
			continue
		}
		if i < r.recIdx {
			before++
		}
		if e.Topic != topic {
			continue
		}
		p := produced{*e.Partition, *e.Offset}
		ch, mine := w.channel[p]
		if !mine {
			continue
		}
		seen[p]++
		if seen[p] > 1 {
			return 0, fmt.Errorf("the record at %d/%d was delivered twice", p.partition, p.offset)
		}
		if prev, ok := last[p.partition]; ok && p.offset <= prev {
			return 0, fmt.Errorf("partition %d: offset %d after %d", p.partition, p.offset, prev)
		}
		last[p.partition] = p.offset
		if e.Channel != ch {
			return 0, fmt.Errorf("the record at %d/%d arrived on channel %q, want %q", p.partition, p.offset, e.Channel, ch)
		}
		livePos := r.recPos[topic][p.partition]
		switch kind[p] {
		case "absent":
			return 0, fmt.Errorf("the record at %d/%d arrived (%s the recovered line), want it not delivered", p.partition, p.offset, where(i, r.recIdx))
		case "replay":
			if i > r.recIdx {
				return 0, fmt.Errorf("the record at %d/%d, to be replayed, came after the recovered line", p.partition, p.offset)
			}
			if p.offset > livePos {
				return 0, fmt.Errorf("the replayed record at %d/%d is past the recovered line's position %d", p.partition, p.offset, livePos)
			}
		case "live":
			if i < r.recIdx {
				return 0, fmt.Errorf("the record at %d/%d, produced after the recovered line, came before it", p.partition, p.offset)
			}
			if p.offset <= livePos {
				return 0, fmt.Errorf("the live record at %d/%d is at or before the recovered line's position %d", p.partition, p.offset, livePos)
			}
		default:
			return 0, fmt.Errorf("the record at %d/%d arrived, unexpected", p.partition, p.offset)
		}
	}
	for _, set := range []struct {
		name string
		ps   []produced
	}{{"replayed", w.replay}, {"delivered live", w.live}} {
		var missing []string
		for _, p := range set.ps {
			if seen[p] == 0 {
				missing = append(missing, fmt.Sprintf("%d/%d", p.partition, p.offset))
			}
		}
		if len(missing) > 0 {
			return 0, fmt.Errorf("%d of %d records were not %s: %s", len(missing), len(set.ps), set.name, strings.Join(missing, " "))
		}
	}
	return before, nil
}

func where(i, recIdx int) string {
	if i < recIdx {
		return "before"
	}
	return "after"
}

// wantSource is where a replay after pos must come from: memory when every partition's
// records after pos fit in WS_HISTORY_RECORDS, else Kafka. Offsets of the suite's broker
// are contiguous (no transactions, no compaction), so the high-water mark counts them.
func (s *suite) wantSource(kv *kafkaView, pos positions) (string, error) {
	if s.cfg.HistoryRecords < 0 {
		return sourceKafka, nil
	}
	hwm, err := kv.newest()
	if err != nil {
		return "", err
	}
	for p, off := range pos[s.cfg.Topic] {
		if hwm[p]-1-off > int64(s.cfg.HistoryRecords) {
			return sourceKafka, nil
		}
	}
	return sourceMemory, nil
}

// notRecovered checks a recovered line that must say recovered false for reason.
func notRecovered(r resumed, reason, topic string) error {
	l := r.rec
	switch {
	case *l.Recovered:
		return fmt.Errorf("recovered true, want false with reason %s: %s", reason, clip(l.raw))
	case *l.Reason != reason:
		return fmt.Errorf("reason %q, want %q: %s", *l.Reason, reason, clip(l.raw))
	case l.Topic != topic:
		return fmt.Errorf("topic %q, want %q: %s", l.Topic, topic, clip(l.raw))
	}
	return nil
}

// verifyNothingReplayed checks the log of b after a resume that was not recovered: none of
// the records A had arrives, and rs, produced after the recovered line, are live.
func (s *suite) verifyNothingReplayed(ctx context.Context, a *firstConn, b *client, r resumed, rs []record) error {
	w := replayWant{absent: a.before, channel: a.channel}
	var err error
	if w.live, err = s.sendLive(ctx, b, "a record produced after the recovered line", rs, a.channel); err != nil {
		return err
	}
	_, err = s.verifyDelivery(b.items(), r, w)
	return err
}
