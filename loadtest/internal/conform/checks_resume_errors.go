package conform

// Checks of the resumes that are not recovered (a wrong epoch, positions older than the
// log start) and of the resumes refused with an error (already_subscribed, the malformed
// resumes of the error table).

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"
)

// checkResumeEpoch resumes with an epoch that is not the topic's: nothing is replayed,
// the recovered line says epoch_changed, and records produced after it are live.
func checkResumeEpoch(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	key := s.key("rese")
	ch := s.channel(key)
	a, err := s.firstConnection(ctx, kv, []string{ch}, numbered(&key, 0, 2))
	if err != nil {
		return "", err
	}
	defer a.close()
	wrong := "x" + a.epoch
	b, r, err := s.dialResume(ctx, "r", []string{ch}, byPositions(topic, wrong, a.pos), kv.parts, false)
	if err != nil {
		return "", err
	}
	defer b.close()
	if err := notRecovered(r, "epoch_changed", topic); err != nil {
		return "", err
	}
	if err := s.verifyNothingReplayed(ctx, a, b, r, numbered(&key, 2, 1)); err != nil {
		return "", err
	}
	return "", nil
}

// checkAlreadySubscribed: a resume naming a held channel is refused, and none of its
// channels is subscribed (a record routed by header to the other one, followed by a record
// of the held channel in the same partition, arrives without it); a positioned subscribe
// to a held channel is answered as usual.
func checkAlreadySubscribed(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	key := s.key("resdup")
	ch := s.channel(key)
	ch2 := s.channel(s.key("resdup"))
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribe(ctx, "s1", ch); err != nil {
		return "", err
	}
	if _, _, err := s.positioned(ctx, c, "s2", kv.parts, ch); err != nil {
		return "", fmt.Errorf("a positioned subscribe to a channel already held: %w", err)
	}
	r, err := c.request(ctx, "s3", map[string]any{"op": "subscribe", "id": "s3", "channels": []string{ch2, ch},
		"resume": map[string]any{"positions": map[string]map[string]int64{topic: {"0": 0}}}})
	if err != nil {
		return "", err
	}
	want := fmt.Sprintf("resume of channel %s: already subscribed", echoed(ch))
	if r.Op != "error" || r.Code != "already_subscribed" || r.Message != want {
		return "", fmt.Errorf("a resume naming held channel %s: reply %s, want error already_subscribed %q", ch, clip(r.Raw), want)
	}
	toOther, err := s.prod.send(record{key: &key, value: []byte(`{"dup":"other"}`), headers: []header{channelHeader(ch2)}})
	if err != nil {
		return "", err
	}
	marker, err := s.prod.send(record{key: &key, value: []byte(`{"dup":"held"}`)})
	if err != nil {
		return "", err
	}
	if _, err := c.waitFor(ctx, "a record of the held channel", at(topic, marker)); err != nil {
		return "", err
	}
	if ms := c.messages(at(topic, toOther)); len(ms) > 0 {
		return "", fmt.Errorf("the refused resume subscribed %s anyway: %s", ch2, clip(ms[0].Raw))
	}
	return "", nil
}

// resumeErrorCase is a malformed subscribe and the invalid_request message it must draw.
type resumeErrorCase struct {
	name  string
	frame string
	// message is the exact message; when prefix is set instead, the message must start
	// with prefix and contain contains.
	message          string
	prefix, contains string
}

func checkResumeErrors(ctx context.Context, s *suite) (string, error) {
	topic := s.cfg.Topic
	ch := s.channel(s.key("reserr"))
	n := 0
	sub := func(extra string) string {
		n++
		return fmt.Sprintf(`{"op":"subscribe","id":"e%d","channels":[%q],%s}`, n, ch, extra)
	}
	pos := func(v string) string { return fmt.Sprintf(`"resume":{"positions":%s}`, v) }
	valid := fmt.Sprintf(`{%q:{"0":1}}`, topic)
	manyTopics := func(prefix, value string) string {
		var b strings.Builder
		b.WriteByte('{')
		for i := range 65 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"%s%d":%s`, prefix, i, value)
		}
		b.WriteByte('}')
		return b.String()
	}
	var manyParts strings.Builder
	for i := range 1025 {
		if i > 0 {
			manyParts.WriteByte(',')
		}
		fmt.Fprintf(&manyParts, `"%d":1`, i)
	}
	const (
		notMap   = "resume.positions must map topics to {partition: offset}"
		sinceBad = "resume.since_ts must be a positive integer (milliseconds)"
		epochBad = "resume.epochs must map topics to strings"
	)
	old := time.Now().Add(-s.cfg.ResumeMaxAge - time.Minute).UnixMilli()
	tooOld := "resume.since_ts is older than the maximum age of " + s.cfg.ResumeMaxAge.String()
	cases := []resumeErrorCase{
		{name: "positioned is a string", frame: sub(`"positioned":"yes"`), message: "positioned must be a boolean"},
		{name: "positioned is a number", frame: sub(`"positioned":1`), message: "positioned must be a boolean"},
		{name: "resume is an array", frame: sub(`"resume":[1]`), message: "resume must be an object"},
		{name: "resume is a string", frame: sub(`"resume":"x"`), message: "resume must be an object"},
		{name: "resume is a number", frame: sub(`"resume":5`), message: "resume must be an object"},
		{name: "positions and since_ts", frame: sub(fmt.Sprintf(`"resume":{"positions":%s,"since_ts":%d}`, valid, time.Now().UnixMilli())), message: "resume takes positions or since_ts, not both"},
		{name: "an empty resume", frame: sub(`"resume":{}`), message: "resume needs positions or since_ts"},
		{name: "a resume with epochs only", frame: sub(fmt.Sprintf(`"resume":{"epochs":{%q:"x"}}`, topic)), message: "resume needs positions or since_ts"},
		{name: "since_ts 0", frame: sub(`"resume":{"since_ts":0}`), message: sinceBad},
		{name: "since_ts negative", frame: sub(`"resume":{"since_ts":-5}`), message: sinceBad},
		{name: "since_ts a string", frame: sub(`"resume":{"since_ts":"1700000000000"}`), message: sinceBad},
		{name: "since_ts a fraction", frame: sub(`"resume":{"since_ts":1700000000000.5}`), message: sinceBad},
		{name: "since_ts past WS_RESUME_MAX_AGE", frame: sub(fmt.Sprintf(`"resume":{"since_ts":%d}`, old)), message: tooOld},
		{name: "since_ts 1 (1970)", frame: sub(`"resume":{"since_ts":1}`), message: tooOld},
		{name: "positions an array", frame: sub(pos(`[1]`)), message: notMap},
		{name: "positions of a topic an array", frame: sub(pos(fmt.Sprintf(`{%q:[1]}`, topic))), message: notMap},
		{name: "positions of a topic a number", frame: sub(pos(fmt.Sprintf(`{%q:5}`, topic))), message: notMap},
		{name: "an offset a string", frame: sub(pos(fmt.Sprintf(`{%q:{"0":"1"}}`, topic))), message: notMap},
		{name: "an offset a fraction", frame: sub(pos(fmt.Sprintf(`{%q:{"0":1.5}}`, topic))), message: notMap},
		{name: "a topic with a space", frame: sub(pos(`{"a b":{"0":1}}`)), prefix: "resume.positions: ", contains: "invalid character ' '"},
		{name: "an empty topic", frame: sub(pos(`{"":{"0":1}}`)), prefix: "resume.positions: ", contains: "empty"},
		{name: "a topic with a '*'", frame: sub(pos(`{"a*":{"0":1}}`)), prefix: "resume.positions: ", contains: "'*' is allowed only as"},
		{name: "a partition that is a word", frame: sub(pos(fmt.Sprintf(`{%q:{"x":1}}`, topic))), message: `resume.positions: partition "x" is not a partition number`},
		{name: "a negative partition", frame: sub(pos(fmt.Sprintf(`{%q:{"-1":1}}`, topic))), message: `resume.positions: partition "-1" is not a partition number`},
		{name: "an offset below -1", frame: sub(pos(fmt.Sprintf(`{%q:{"0":-2}}`, topic))), message: "resume.positions: offsets are at least -1"},
		{name: "65 topics of positions", frame: sub(pos(manyTopics("t", `{"0":1}`))), message: "resume.positions has more than 64 topics"},
		{name: "1025 partitions of a topic", frame: sub(pos(fmt.Sprintf(`{%q:{%s}}`, topic, manyParts.String()))), message: fmt.Sprintf("resume.positions of %s has more than 1024 partitions", echoed(topic))},
		{name: "an epoch a number", frame: sub(fmt.Sprintf(`"resume":{"positions":%s,"epochs":{%q:1}}`, valid, topic)), message: epochBad},
		{name: "epochs an array", frame: sub(fmt.Sprintf(`"resume":{"positions":%s,"epochs":["x"]}`, valid)), message: epochBad},
		{name: "65 topics of epochs", frame: sub(fmt.Sprintf(`"resume":{"positions":%s,"epochs":%s}`, valid, manyTopics("t", `"x"`))), message: "resume.epochs has more than 64 topics"},
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	ran := 0
	var skipped []string
	for i, tc := range cases {
		if len(tc.frame) > s.cfg.ReadLimit {
			skipped = append(skipped, tc.name)
			continue
		}
		ran++
		id := fmt.Sprintf("e%d", i+1)
		if err := c.sendRaw(ctx, websocket.MessageText, []byte(tc.frame)); err != nil {
			return "", fmt.Errorf("%s: %w", tc.name, err)
		}
		r, err := c.reply(ctx, id)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", tc.name, clip([]byte(tc.frame)), err)
		}
		if r.Op != "error" || r.Code != "invalid_request" {
			return "", fmt.Errorf("%s %s: reply %s, want error invalid_request", tc.name, clip([]byte(tc.frame)), clip(r.Raw))
		}
		switch {
		case tc.message != "" && r.Message != tc.message:
			return "", fmt.Errorf("%s %s: message %q, want %q", tc.name, clip([]byte(tc.frame)), r.Message, tc.message)
		case tc.message == "" && (!strings.HasPrefix(r.Message, tc.prefix) || !strings.Contains(r.Message, tc.contains)):
			return "", fmt.Errorf("%s %s: message %q, want %q followed by the channel rule (%q)", tc.name, clip([]byte(tc.frame)), r.Message, tc.prefix, tc.contains)
		}
	}
	if err := c.ping(ctx, "still-open"); err != nil {
		return "", fmt.Errorf("after %d errors the connection must stay open: %w", ran, err)
	}
	detail := fmt.Sprintf("%d cases", ran)
	if len(skipped) > 0 {
		detail += fmt.Sprintf("; %d larger than WS_READ_LIMIT %d skipped (%s)", len(skipped), s.cfg.ReadLimit, strings.Join(skipped, ", "))
	}
	return detail, nil
}

func retentionBudget(c Config) time.Duration { return max(c.CheckTimeout, 20*time.Second) }

// checkOutOfRetention deletes a partition's records up to the last of three the check
// produced (DeleteRecords), then resumes from a position before the first: the position
// is older than the log start, so nothing is replayed and the recovered line says
// out_of_retention with the log's first offset. The server learns the log start from
// Kafka from time to time: while it still answers recovered, the check asks again.
func checkOutOfRetention(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	key := s.key("reso")
	ch := s.channel(key)
	a, err := s.firstConnection(ctx, kv, []string{ch}, numbered(&key, 0, 3))
	if err != nil {
		return "", err
	}
	defer a.close()
	part, logStart := a.before[2].partition, a.before[2].offset
	if err := kv.admin.DeleteRecords(topic, map[int32]int64{part: logStart}); err != nil {
		return "", fmt.Errorf("DeleteRecords %s/%d before %d: %w", topic, part, logStart, err)
	}
	if got, err := kv.client.GetOffset(topic, part, sarama.OffsetOldest); err != nil || got != logStart {
		return "", fmt.Errorf("after DeleteRecords the log start of %s/%d is %d (%v), want %d", topic, part, got, err, logStart)
	}
	start := time.Now()
	b, r, attempts, err := s.resumeUntilNotRecovered(ctx, ch, byPositions(topic, a.epoch, a.pos), kv.parts)
	if err != nil {
		return "", fmt.Errorf("position %d of %s/%d is before the log start %d (DeleteRecords): %w", a.pos[topic][part], topic, part, logStart, err)
	}
	defer b.close()
	if err := notRecovered(r, "out_of_retention", topic); err != nil {
		return "", err
	}
	l := r.rec
	if l.Partition == nil || *l.Partition != part {
		return "", fmt.Errorf("out_of_retention names partition %v, want %d: %s", l.Partition, part, clip(l.raw))
	}
	if l.Earliest == nil || *l.Earliest != logStart {
		return "", fmt.Errorf("out_of_retention earliest %v, want the log start %d: %s", l.Earliest, logStart, clip(l.raw))
	}
	if err := s.verifyNothingReplayed(ctx, a, b, r, numbered(&key, 3, 1)); err != nil {
		return "", err
	}
	return fmt.Sprintf("earliest %d on attempt %d, %v after DeleteRecords", logStart, attempts, time.Since(start).Round(time.Millisecond)), nil
}

// resumeUntilNotRecovered resumes on a new connection every 500 ms until the recovered
// line says recovered false, and returns that connection open. It fails when ctx has
// less than 2 s left and the resumes still recover.
func (s *suite) resumeUntilNotRecovered(ctx context.Context, ch string, resume map[string]any, parts []int32) (*client, resumed, int, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		b, r, err := s.dialResume(ctx, "r", []string{ch}, resume, parts, false)
		if err != nil {
			return nil, r, attempt, err
		}
		if !*r.rec.Recovered {
			return b, r, attempt, nil
		}
		b.close()
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < 2*time.Second {
			return nil, r, attempt, fmt.Errorf("%d resumes over %v answered recovered: %s", attempt, time.Since(start).Round(time.Millisecond), clip(r.rec.raw))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
