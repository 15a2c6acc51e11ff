package conform

// Checks of docs/PROTOCOL.md "Conflation and positions": a resume with conflate replays
// each key's latest record, and a topic subscribed at an interval gets no marks.

import (
	"context"
	"fmt"
	"time"
)

// conflateSnapshot produces 10 records alternating two channels, then resumes both with
// conflate (behind or at an interval) and since_ts before the first: after the subscribed
// reply, each channel's latest record alone is replayed, right after a conflated line
// announcing the 4 before it; then the recovered line, and live records after it.
func conflateSnapshot(conflate any) kafkaCheck {
	return func(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
		return checkConflateSnapshot(ctx, s, kv, conflate)
	}
}

func checkConflateSnapshot(ctx context.Context, s *suite, kv *kafkaView, conflate any) (string, error) {
	topic := s.cfg.Topic
	keys := []string{s.key("cfsnap"), s.key("cfsnap")}
	channels := []string{s.channel(keys[0]), s.channel(keys[1])}
	watcher, err := s.subscribed(ctx, channels...)
	if err != nil {
		return "", err
	}
	defer watcher.close()
	const perKey = 5
	base := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	var rs []record
	for i := range 2 * perKey {
		rs = append(rs, record{key: &keys[i%2], value: fmt.Appendf(nil, `{"n":%d}`, i), ts: base.Add(time.Duration(i) * time.Millisecond)})
	}
	channel := map[produced]string{}
	ps, err := s.sendEach(rs, channel)
	if err != nil {
		return "", err
	}
	if _, err := watcher.waitMessages(ctx, "records on the watcher", len(ps), inSet(topic, ps)); err != nil {
		return "", err
	}
	want := keyRecords{}
	for _, p := range ps {
		want.add(channel[p], p)
	}
	// Resume once every record's stamp is in the past.
	time.Sleep(time.Until(base.Add(time.Duration(len(rs))*time.Millisecond + 50*time.Millisecond)))
	since := base.Add(-time.Millisecond).UnixMilli()

	b, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer b.close()
	req := conflateRequest("snap", conflate, false, channels...)
	req["resume"] = map[string]any{"since_ts": since}
	r, err := s.resumeRequest(ctx, b, "snap", req, kv.parts, false)
	if err != nil {
		return "", err
	}
	if err := checkConflateEcho(Envelope{Raw: r.sub.raw}, conflate); err != nil {
		return "", err
	}
	if !*r.rec.Recovered {
		return "", fmt.Errorf("not recovered: %s", clip(r.rec.raw))
	}
	items := b.items()
	replayed := 0
	for i, it := range items[:r.recIdx] {
		if it.env.Op != "message" {
			continue
		}
		replayed++
		if it.env.Partition == nil || it.env.Offset == nil {
			return "", fmt.Errorf("a replayed message without partition and offset: %s", clip(it.env.Raw))
		}
		if i < r.subIdx {
			return "", fmt.Errorf("a replayed message before the subscribed reply: %s", clip(it.env.Raw))
		}
		k := conflateKey{it.env.Channel, *it.env.Partition}
		recs, ok := want[k]
		if !ok {
			return "", fmt.Errorf("a replayed message of no channel of the resume: %s", clip(it.env.Raw))
		}
		if *it.env.Offset != want.last(k) {
			return "", fmt.Errorf("a replayed message of %s at offset %d, want only its latest record, at %d: %s", k, *it.env.Offset, want.last(k), clip(it.env.Raw))
		}
		if i == 0 || items[i-1].env.Op != "conflated" {
			return "", fmt.Errorf("the latest record of %s, replayed conflated, without a conflated line right before it: %s", k, clip(it.env.Raw))
		}
		c, err := parseConflation(items[i-1].env.Raw)
		if err != nil {
			return "", err
		}
		if c.Skipped == nil || *c.Skipped != perKey-1 || c.To == nil || *c.To != recs[perKey-2] {
			return "", fmt.Errorf("the conflated line before the replay of %s is %s, want skipped %d and to %d", k, clip(items[i-1].env.Raw), perKey-1, recs[perKey-2])
		}
	}
	if replayed != len(keys) {
		return "", fmt.Errorf("%d messages before the recovered line, want the latest record of each of the %d channels", replayed, len(keys))
	}
	if *r.rec.Replayed != replayed {
		return "", fmt.Errorf("%d records came before the recovered line, which says replayed %d", replayed, *r.rec.Replayed)
	}
	live, err := s.sendLive(ctx, b, "live records after the resume", []record{{key: &keys[0], value: []byte(`{"live":0}`)}, {key: &keys[1], value: []byte(`{"live":1}`)}}, channel)
	if err != nil {
		return "", err
	}
	for _, p := range live {
		want.add(channel[p], p)
	}
	t, err := verifyConflated(b.items(), topic, want)
	if err != nil {
		return "", err
	}
	if err := checkLatest(t, want, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d records, %d replayed from %s after their conflated lines, 2 live", len(rs), replayed, *r.rec.Source), nil
}

func noMarksBudget(c Config) time.Duration {
	return max(c.CheckTimeout, 4*c.MarkInterval+5*time.Second)
}

// checkConflateNoMarks subscribes positioned at an interval to a channel, and another client
// positioned without conflate to the same channel, and produces to it every 100 ms for two
// mark intervals: the plain client gets marks, the one at an interval none.
func checkConflateNoMarks(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	key := s.key("cfmark")
	ch := s.channel(key)
	iv, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer iv.close()
	if _, err := s.positionedConflated(ctx, iv, "iv", conflateEvery(conflateIntervalMS), kv.parts, ch); err != nil {
		return "", err
	}
	plain, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer plain.close()
	if _, _, err := s.positioned(ctx, plain, "m", kv.parts, ch); err != nil {
		return "", err
	}
	const period = 100 * time.Millisecond
	n := int((2*s.cfg.MarkInterval)/period) + 3
	want := keyRecords{}
	ps, err := produceEvery(ctx, s, period, n, func(i int) record {
		return record{key: &key, value: fmt.Appendf(nil, `{"n":%d}`, i)}
	}, want)
	if err != nil {
		return "", err
	}
	last := ps[len(ps)-1]
	// The plain client's mark past the last record: marks were due meanwhile.
	if _, err := plain.waitFor(ctx, fmt.Sprintf("a mark past the last record on the plain positioned subscriber (WS_MARK_INTERVAL %v)", s.cfg.MarkInterval), func(e Envelope) bool {
		if e.Op != "mark" {
			return false
		}
		l, err := parsePosLine(e)
		if err != nil || l.Topic != topic {
			return false
		}
		mp, err := l.markPositions()
		return err == nil && mp[last.partition] >= last.offset
	}); err != nil {
		return "", err
	}
	if _, err := iv.waitFor(ctx, "the last record at an interval", at(topic, last)); err != nil {
		return "", err
	}
	if err := iv.ping(ctx, "after"); err != nil {
		return "", err
	}
	for _, it := range iv.items() {
		if it.env.Op == "mark" {
			return "", fmt.Errorf("a mark to a client holding %s at an interval (%d records over %v): %s", topic, n, time.Duration(n)*period, clip(it.env.Raw))
		}
	}
	t, err := verifyConflated(iv.items(), topic, want)
	if err != nil {
		return "", err
	}
	if err := checkLatest(t, want, nil); err != nil {
		return "", err
	}
	marks := 0
	for _, it := range plain.items() {
		if it.env.Op == "mark" {
			marks++
		}
	}
	return fmt.Sprintf("%d records over %v: %d marks to the plain positioned client, none at the interval (%d messages)", n, time.Duration(n)*period, marks, t.deliveredOf()), nil
}
