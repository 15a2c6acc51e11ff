package conform

// Checks of docs/PROTOCOL.md "Positions and resume": the positioned subscribe, marks,
// resumes by positions (from memory and from Kafka) and by time, the reasons a resume is not
// recovered, already_subscribed and the errors of a malformed resume. Every check produces
// its own records with run-unique keys and proves an absence by order: a later record of the
// same partition has arrived. Checks run one at a time, so between two steps of a check the
// only records produced to the topic are the check's own.

import (
	"context"
	"fmt"
	"time"
)

// maxKafkaHistory is the largest WS_HISTORY_RECORDS for which the suite checks a resume
// from Kafka: it produces twice that many records to one partition to pass the history.
const maxKafkaHistory = 200

func resumeChecks(cfg Config) []check {
	cs := []check{
		{name: "resume: a positioned subscribe answers epochs and every partition's position", run: withKafka(checkPositioned)},
	}
	if cfg.MarkInterval > 0 {
		cs = append(cs, check{name: "resume: marks every WS_MARK_INTERVAL pass the records queued before them, to positioned subscribers only", run: withKafka(checkMarks), budget: markBudget})
	}
	cs = append(cs,
		check{name: "resume: by positions, a key and a channel header: the rest replayed once in order, recovered, then live", run: withKafka(checkResumeExact)},
		check{name: "resume: by positions through <topic>:*, the suite's records replayed once in order", run: withKafka(checkResumeWildcard)},
		check{name: "resume: a partition missing from positions is live from now, without replay", run: withKafka(checkResumeMissingPartition)},
	)
	if cfg.HistoryRecords <= maxKafkaHistory {
		cs = append(cs, check{name: "resume: by positions from Kafka past WS_HISTORY_RECORDS; a later request waits for the recovered line", run: withKafka(checkResumeKafka)})
	}
	return append(cs,
		check{name: "resume: by time (since_ts) replays the records stamped at or after it", run: withKafka(checkResumeByTime)},
		check{name: "resume: a client ahead of the server gets nothing twice", run: withKafka(checkResumeAhead)},
		check{name: "resume: a wrong epoch is not recovered (epoch_changed), live continues", run: withKafka(checkResumeEpoch)},
		check{name: "resume: already_subscribed, all-or-nothing; a positioned repeat is not an error", run: withKafka(checkAlreadySubscribed)},
		check{name: "resume: invalid_request for each malformed resume of the error table", run: checkResumeErrors},
		// Last of them: it deletes records of a partition.
		check{name: "resume: positions older than the log start are not recovered (out_of_retention)", run: withKafka(checkOutOfRetention), budget: retentionBudget},
	)
}

// resumeScenario is a client that subscribes positioned on connection A, processes some
// of the records it gets, goes away, and resumes on connection B from its positions.
type resumeScenario struct {
	channels []string
	before   []record // produced while A is subscribed
	process  int      // how many of them A processed, in the order it received them
	// keep, when set, says which partitions B's positions name; the others are left out
	// (live from now, without replay).
	keep      func(part int32) bool
	after     []record // produced after A went away
	live      []record // produced after B's recovered line
	pingAfter bool     // send a ping right after the resume
	// source, when set, is the source the check insists on (it must agree with
	// wantSource, which is always checked).
	source string
}

func (s *suite) runResume(ctx context.Context, kv *kafkaView, sc resumeScenario) (string, error) {
	topic := s.cfg.Topic
	// The watcher proves the server consumed the records produced after A went away.
	watcher, err := s.subscribed(ctx, sc.channels...)
	if err != nil {
		return "", err
	}
	defer watcher.close()
	a, err := s.firstConnection(ctx, kv, sc.channels, sc.before)
	if err != nil {
		return "", err
	}
	aOpen := true
	defer func() {
		if aOpen {
			a.close()
		}
	}()
	before, channel := a.before, a.channel
	pos := a.pos.clone()
	for _, m := range a.got[:sc.process] {
		pos[topic][*m.Partition] = max(pos[topic][*m.Partition], *m.Offset)
	}
	if sc.keep != nil {
		for p := range pos[topic] {
			if !sc.keep(p) {
				delete(pos[topic], p)
			}
		}
	}
	a.close()
	aOpen = false
	after, err := s.sendEach(sc.after, channel)
	if err != nil {
		return "", err
	}
	if _, err := watcher.waitMessages(ctx, "records on the watcher", len(before)+len(after), inSet(topic, before, after)); err != nil {
		return "", err
	}
	source, err := s.wantSource(kv, pos)
	if err != nil {
		return "", err
	}
	if sc.source != "" && source != sc.source {
		return "", fmt.Errorf("the check expects a replay from %s, but its records fit WS_HISTORY_RECORDS %d", sc.source, s.cfg.HistoryRecords)
	}
	var w replayWant
	w.channel, w.source = channel, source
	for _, p := range append(append([]produced(nil), before...), after...) {
		if off, ok := pos.at(topic, p.partition); ok && p.offset > off {
			w.replay = append(w.replay, p)
		} else {
			w.absent = append(w.absent, p)
		}
	}

	b, r, err := s.dialResume(ctx, "r", sc.channels, byPositions(topic, a.epoch, pos), kv.parts, sc.pingAfter)
	if err != nil {
		return "", err
	}
	defer b.close()
	if r.sub.Epochs[topic] != a.epoch {
		return "", fmt.Errorf("epoch %q on resume, %q on the first connection", r.sub.Epochs[topic], a.epoch)
	}
	if w.live, err = s.sendLive(ctx, b, "live records after the resume", sc.live, channel); err != nil {
		return "", err
	}
	// The watcher has them too: anything B was to get of them has been queued.
	if _, err := watcher.waitMessages(ctx, "every record on the watcher", len(before)+len(after)+len(w.live), inSet(topic, before, after, w.live)); err != nil {
		return "", err
	}
	replayed, err := s.verifyResume(b, r, w)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("A processed %d of %d, %d more after it left; B: %d replayed from %s, %d live", sc.process, len(before), len(after), replayed, *r.rec.Source, len(w.live)), nil
}

func checkResumeExact(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	key := s.key("resx")
	ch := s.channel(key)
	// A record whose channel header routes it to ch; its own key may land it elsewhere.
	routed := func(n int) record {
		k := s.key("resxh")
		return record{key: &k, value: fmt.Appendf(nil, `{"routed":%d}`, n), headers: []header{channelHeader(ch)}}
	}
	return s.runResume(ctx, kv, resumeScenario{
		channels: []string{ch},
		before:   []record{numbered(&key, 0, 1)[0], routed(1), numbered(&key, 2, 1)[0], numbered(&key, 3, 1)[0]},
		process:  2,
		after:    []record{numbered(&key, 4, 1)[0], routed(5), numbered(&key, 6, 1)[0]},
		live:     []record{numbered(&key, 7, 1)[0], routed(8)},
	})
}

func checkResumeWildcard(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	keys := []string{s.key("resw"), s.key("resw"), s.key("resw")}
	hdr := s.cfg.Topic + ":" + s.run + "-reswh"
	round := func(n int) []record {
		var rs []record
		for i := range keys {
			rs = append(rs, record{key: &keys[i], value: fmt.Appendf(nil, `{"w":%d}`, n)})
		}
		return rs
	}
	routed := record{key: &keys[0], value: []byte(`{"w":"routed"}`), headers: []header{channelHeader(hdr)}}
	return s.runResume(ctx, kv, resumeScenario{
		channels: []string{s.cfg.Topic + ":*"},
		before:   append(append(round(0), round(1)...), routed),
		process:  3,
		after:    append(round(2), routed),
		live:     round(3),
	})
}

// checkResumeMissingPartition resumes with the position of one key's partition only: what
// was produced meanwhile on another subscribed key, in another partition, is not replayed,
// and that key is live again from the resume.
func checkResumeMissingPartition(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	if len(kv.parts) < 2 {
		return fmt.Sprintf("skipped: %s has one partition", s.cfg.Topic), nil
	}
	k1, p1, err := s.keyIn(kv, "resm", anyPartition)
	if err != nil {
		return "", err
	}
	k2, _, err := s.keyIn(kv, "resm", func(p int32) bool { return p != p1 })
	if err != nil {
		return "", err
	}
	return s.runResume(ctx, kv, resumeScenario{
		channels: []string{s.channel(k1), s.channel(k2)},
		before:   append(numbered(&k1, 0, 2), numbered(&k2, 0, 2)...),
		process:  4,
		keep:     func(p int32) bool { return p == p1 },
		after:    append(numbered(&k1, 2, 2), numbered(&k2, 2, 2)...),
		live:     append(numbered(&k1, 4, 1), numbered(&k2, 4, 1)...),
	})
}

// checkResumeKafka resumes from a position further back than WS_HISTORY_RECORDS records of
// its partition, so the replay is read from Kafka; a ping sent right after the resume is
// answered after the recovered line.
func checkResumeKafka(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	key := s.key("resk")
	n := 2*max(s.cfg.HistoryRecords, 0) + 4
	return s.runResume(ctx, kv, resumeScenario{
		channels:  []string{s.channel(key)},
		before:    numbered(&key, 0, n),
		process:   1,
		after:     numbered(&key, n, 2),
		live:      numbered(&key, n+2, 2),
		pingAfter: true,
		source:    sourceKafka,
	})
}

// checkResumeByTime produces records stamped 20 ms apart, each newer than anything before
// it in the partition, and resumes with a since_ts between the second and the third: the
// third and later are replayed, the first two not. When WS_HISTORY_RECORDS is small the
// replay is longer than the history, so the server looks the time up in Kafka.
func checkResumeByTime(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	key := s.key("rest")
	ch := s.channel(key)
	n := 4
	if s.cfg.HistoryRecords <= maxKafkaHistory {
		n = max(s.cfg.HistoryRecords, 0) + 4
	}
	watcher, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", err
	}
	defer watcher.close()
	const step = 20 * time.Millisecond
	base := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	channel := map[produced]string{}
	rs := numbered(&key, 0, n)
	for i := range rs {
		rs[i].ts = base.Add(time.Duration(i) * step)
	}
	ps, err := s.sendEach(rs, channel)
	if err != nil {
		return "", err
	}
	if _, err := watcher.waitMessages(ctx, "records on the watcher", n, inSet(topic, ps)); err != nil {
		return "", err
	}
	since := base.Add(step + step/2)
	// Resume once every record's stamp is in the past.
	time.Sleep(time.Until(base.Add(time.Duration(n)*step + 50*time.Millisecond)))
	w := replayWant{replay: ps[2:], absent: ps[:2], channel: channel}
	switch replay := n - 2; {
	case s.cfg.HistoryRecords < 0 || replay > s.cfg.HistoryRecords:
		w.source = sourceKafka
	case replay+2 <= s.cfg.HistoryRecords:
		// The history also holds a record stamped before since_ts: it reaches back.
		w.source = sourceMemory
	}
	b, r, err := s.dialResume(ctx, "t", []string{ch}, map[string]any{"since_ts": since.UnixMilli()}, kv.parts, false)
	if err != nil {
		return "", err
	}
	defer b.close()
	if w.live, err = s.sendLive(ctx, b, "live records after the resume", numbered(&key, n, 2), channel); err != nil {
		return "", err
	}
	replayed, err := s.verifyResume(b, r, w)
	if err != nil {
		return "", fmt.Errorf("since_ts %d (records stamped %d + %v each): %w", since.UnixMilli(), base.UnixMilli(), step, err)
	}
	return fmt.Sprintf("%d of %d records replayed from %s, 2 live", replayed, n, *r.rec.Source), nil
}

// checkResumeAhead resumes with a position past the server's on one partition, as a
// client coming from an instance that was ahead: records up to it are not delivered.
func checkResumeAhead(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	key := s.key("resa")
	ch := s.channel(key)
	a, err := s.firstConnection(ctx, kv, []string{ch}, numbered(&key, 0, 3))
	if err != nil {
		return "", err
	}
	defer a.close()
	part := a.before[2].partition
	ahead := a.before[2].offset + 3
	pos := a.pos.clone()
	pos[topic][part] = ahead
	b, r, err := s.dialResume(ctx, "r", []string{ch}, byPositions(topic, a.epoch, pos), kv.parts, false)
	if err != nil {
		return "", err
	}
	defer b.close()
	if got := r.recPos[topic][part]; got < ahead {
		return "", fmt.Errorf("the recovered line's position %d of %s/%d is behind the client's %d: records up to the client's position would come again: %s", got, topic, part, ahead, clip(r.rec.raw))
	}
	later, err := s.sendEach(numbered(&key, 3, 5), a.channel)
	if err != nil {
		return "", err
	}
	w := replayWant{absent: a.before, channel: a.channel}
	for _, p := range later {
		if p.offset > ahead {
			w.live = append(w.live, p)
		} else {
			w.absent = append(w.absent, p)
		}
	}
	if _, err := b.waitMessages(ctx, "records past the client's position", len(w.live), inSet(topic, w.live)); err != nil {
		return "", err
	}
	if _, err := s.verifyResume(b, r, w); err != nil {
		return "", fmt.Errorf("position %d of %s/%d, %d ahead of the server: %w", ahead, topic, part, 3, err)
	}
	return fmt.Sprintf("%d records up to the client's position not delivered, %d past it live", len(w.absent), len(w.live)), nil
}
