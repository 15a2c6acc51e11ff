package conform

// Checks of docs/PROTOCOL.md "Conflation": the subscribe's conflate (its errors, its echo,
// one interval per topic on a connection), conflation while behind and at an interval, a
// conflated resume, and no marks for a topic at an interval. Every check produces to
// run-unique keys and holds what its clients got to verifyConflated: every record not
// delivered was announced.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/coder/websocket"
)

func conflateChecks(cfg Config) []check {
	cs := []check{
		{name: "conflate: invalid_request for each malformed conflate of the error table", run: checkConflateErrors},
		{name: "conflate: the subscribed reply echoes conflate, positioned too", run: withKafka(checkConflateReplies)},
		{name: "conflate: a topic's channels share one interval on a connection, else invalid_request", run: checkConflateOneInterval},
		{name: "conflate: behind, a client that stops reading gets each key's latest, every skip announced, and is not cut", run: withKafka(checkConflateBehind), budget: behindBudget},
		{name: "conflate: behind, a client that keeps up gets every record", run: checkConflateKeepingUp},
		{name: "conflate: at an interval, the first record at once, then the latest once per interval with its count", run: checkConflateInterval, budget: intervalBudget},
		{name: "conflate: a resume by time with conflate behind is a snapshot, each key's latest after its conflated line", run: withKafka(conflateSnapshot(conflateBehind))},
		{name: "conflate: a resume by time at an interval is a snapshot too", run: withKafka(conflateSnapshot(conflateEvery(conflateIntervalMS)))},
	}
	if cfg.MarkInterval > 0 {
		cs = append(cs, check{name: "conflate: no marks for a topic subscribed at an interval", run: withKafka(checkConflateNoMarks), budget: noMarksBudget})
	}
	return cs
}

const (
	msgConflateType     = `conflate must be "behind" or {"ms":N}`
	msgConflateInterval = "conflate.ms must be one of 100, 250, 500, 1000, 2000, 5000"
)

// msgConflateMismatch is the error of an interval that differs from the client's other
// subscriptions of topic.
func msgConflateMismatch(topic string) string {
	return "conflate of " + echoed(topic) + " channels must be the same interval on a connection"
}

func checkConflateErrors(ctx context.Context, s *suite) (string, error) {
	ch := s.channel(s.key("cferr"))
	n := 0
	bad := func(name, conflate, message string) errorCase {
		n++
		id := fmt.Sprintf("f%d", n)
		return errorCase{name: name, id: id, message: message,
			frame: fmt.Sprintf(`{"op":"subscribe","id":%q,"channels":[%q],"conflate":%s}`, id, ch, conflate)}
	}
	return expectErrors(ctx, s, "invalid_request", []errorCase{
		bad("an unknown mode", `"latest"`, msgConflateType),
		bad("a mode in capitals", `"Behind"`, msgConflateType),
		bad("a number", `7`, msgConflateType),
		bad("an array", `["behind"]`, msgConflateType),
		bad("an object without ms", `{"interval":250}`, msgConflateType),
		bad("ms not an allowed interval", `{"ms":300}`, msgConflateInterval),
		bad("ms a string", `{"ms":"100"}`, msgConflateInterval),
		bad("ms zero", `{"ms":0}`, msgConflateInterval),
		bad("ms a fraction", `{"ms":100.5}`, msgConflateInterval),
		{name: "a positioned subscribe with ms not allowed", id: "fp", message: msgConflateInterval,
			frame: fmt.Sprintf(`{"op":"subscribe","id":"fp","channels":[%q],"positioned":true,"conflate":{"ms":300}}`, ch)},
	})
}

// conflateRequest is a subscribe with conflate; positioned when asked.
func conflateRequest(id string, conflate any, positioned bool, channels ...string) map[string]any {
	req := map[string]any{"op": "subscribe", "id": id, "channels": channels, "conflate": conflate}
	if positioned {
		req["positioned"] = true
	}
	return req
}

// subscribeConflated subscribes c to channels with conflate and insists on a subscribed
// reply that echoes it.
func subscribeConflated(ctx context.Context, c *client, id string, conflate any, channels ...string) error {
	r, err := c.request(ctx, id, conflateRequest(id, conflate, false, channels...))
	if err != nil {
		return err
	}
	if r.Op != "subscribed" {
		return fmt.Errorf("subscribe %v with conflate %v: reply %s", channels, conflate, clip(r.Raw))
	}
	return checkConflateEcho(r, conflate)
}

// positionedConflated sends a positioned subscribe with conflate, checks its reply as a
// positioned one that echoes conflate, and returns the reply.
func (s *suite) positionedConflated(ctx context.Context, c *client, id string, conflate any, parts []int32, channels ...string) (posLine, error) {
	r, err := c.request(ctx, id, conflateRequest(id, conflate, true, channels...))
	if err != nil {
		return posLine{}, err
	}
	l, err := s.checkSubscribedReply(r, parts, channels)
	if err != nil {
		return l, err
	}
	return l, checkConflateEcho(r, conflate)
}

// checkConflateReplies checks the subscribed replies to subscribes with conflate: byte
// for byte for a plain one (both variants send the same bytes), field by field for a
// positioned one. Each mode on its own connection: one topic, one interval.
func checkConflateReplies(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	tests := []struct {
		conflate any
		echo     string
	}{
		{conflateBehind, `"behind"`},
		{conflateEvery(250), `{"ms":250}`},
	}
	for _, tt := range tests {
		if err := s.conflateReplies(ctx, kv, tt.conflate, tt.echo); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d modes, plain and positioned", len(tests)), nil
}

// conflateReplies subscribes a new connection with conflate, plainly and positioned, and
// checks both replies; echo is conflate as the plain reply must carry it.
func (s *suite) conflateReplies(ctx context.Context, kv *kafkaView, conflate any, echo string) error {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return err
	}
	defer c.close()
	ch := s.channel(s.key("cfecho"))
	r, err := c.request(ctx, "e", conflateRequest("e", conflate, false, ch))
	if err != nil {
		return err
	}
	if want := fmt.Sprintf(`{"op":"subscribed","id":"e","channels":[%q],"conflate":%s}`, ch, echo); string(r.Raw) != want {
		return fmt.Errorf("subscribe with \"conflate\":%s: reply %s, want %s", echo, clip(r.Raw), want)
	}
	if _, err := s.positionedConflated(ctx, c, "p", conflate, kv.parts, s.channel(s.key("cfecho"))); err != nil {
		return fmt.Errorf("positioned, \"conflate\":%s: %w", echo, err)
	}
	return nil
}

// checkConflateOneInterval: once a channel of the topic is held at an interval, a
// subscribe to another channel of the topic at another interval, plain or behind is
// refused with the documented message; the same interval, and a channel of another topic
// without conflate, are accepted. The other way round, an interval is refused next to a
// plain channel of the topic, and behind is not (plain and behind mix freely).
func checkConflateOneInterval(ctx context.Context, s *suite) (string, error) {
	topic := s.cfg.Topic
	chA, chB := s.channel(s.key("cfone")), s.channel(s.key("cfone"))
	other := s.run + "-other:" + s.key("cfone")
	want := msgConflateMismatch(topic)
	refused := func(c *client, id string, req map[string]any) error {
		r, err := c.request(ctx, id, req)
		if err != nil {
			return err
		}
		if r.Op != "error" || r.Code != "invalid_request" || r.Message != want {
			b, _ := json.Marshal(req)
			return fmt.Errorf("%s: reply %s, want error invalid_request %q", b, clip(r.Raw), want)
		}
		return nil
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := subscribeConflated(ctx, c, "i1", conflateEvery(250), chA); err != nil {
		return "", err
	}
	for _, step := range []struct {
		id  string
		req map[string]any
	}{
		{"i2", conflateRequest("i2", conflateEvery(1000), false, chB)},
		{"i3", map[string]any{"op": "subscribe", "id": "i3", "channels": []string{chB}}},
		{"i4", conflateRequest("i4", conflateBehind, false, chB)},
	} {
		if err := refused(c, step.id, step.req); err != nil {
			return "", fmt.Errorf("with %s held at 250 ms: %w", chA, err)
		}
	}
	if err := subscribeConflated(ctx, c, "i5", conflateEvery(250), chB); err != nil {
		return "", fmt.Errorf("the same interval: %w", err)
	}
	if err := c.subscribe(ctx, "i6", other); err != nil {
		return "", fmt.Errorf("a channel of another topic without conflate: %w", err)
	}
	d, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer d.close()
	if err := d.subscribe(ctx, "j1", chA); err != nil {
		return "", err
	}
	if err := refused(d, "j2", conflateRequest("j2", conflateEvery(250), false, chB)); err != nil {
		return "", fmt.Errorf("with %s held plain: %w", chA, err)
	}
	if err := subscribeConflated(ctx, d, "j3", conflateBehind, chB); err != nil {
		return "", fmt.Errorf("behind next to plain: %w", err)
	}
	return "", nil
}

// checkConflateKeepingUp subscribes behind and produces 200 records to one channel, one
// every 10 ms, to a client that reads at full speed: every one arrives, none conflated.
// (A client is behind while its socket has not taken the last write: records much closer
// together could meet a write that waits for the CPU on a loaded host.)
func checkConflateKeepingUp(ctx context.Context, s *suite) (string, error) {
	topic := s.cfg.Topic
	key := s.key("cfkeep")
	ch := s.channel(key)
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := subscribeConflated(ctx, c, "k", conflateBehind, ch); err != nil {
		return "", err
	}
	const n = 200
	want := keyRecords{}
	ps, err := produceEvery(ctx, s, keepingUpPeriod, n, func(i int) record {
		return record{key: &key, value: fmt.Appendf(nil, `{"n":%d}`, i)}
	}, want)
	if err != nil {
		return "", err
	}
	if _, err := c.waitFor(ctx, "the last record of "+ch, at(topic, ps[n-1])); err != nil {
		return "", err
	}
	// Replies come after what was queued before them: nothing of ch is still on its way.
	if err := c.ping(ctx, "after"); err != nil {
		return "", err
	}
	t, err := verifyConflated(c.items(), topic, want)
	if err != nil {
		return "", err
	}
	if t.lines > 0 || t.fields > 0 {
		return "", fmt.Errorf("a client reading at full speed got %d of %d records produced every %v, with %d conflated lines and %d conflated counts (%d records skipped)", t.deliveredOf(), n, keepingUpPeriod, t.lines, t.fields, t.skipped)
	}
	return fmt.Sprintf("all %d records, none conflated", n), nil
}

// keepingUpPeriod is the time between two records of checkConflateKeepingUp.
const keepingUpPeriod = 10 * time.Millisecond

// produceEvery produces n records, one every period (or slower, as the broker takes
// them), notes each in want and returns where they landed.
func produceEvery(ctx context.Context, s *suite, period time.Duration, n int, rec func(i int) record, want keyRecords) ([]produced, error) {
	tick := time.NewTicker(period)
	defer tick.Stop()
	out := make([]produced, 0, n)
	for i := range n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("producing record %d of %d: %w", i+1, n, ctx.Err())
		}
		r := rec(i)
		p, err := s.prod.send(r)
		if err != nil {
			return nil, err
		}
		want.add(s.channelOf(r), p)
		out = append(out, p)
	}
	return out, nil
}

// arrival is when the first received object that match accepts arrived.
func arrival(c *client, match func(Envelope) bool) (time.Time, bool) {
	for _, it := range c.items() {
		if match(it.env) {
			return it.at, true
		}
	}
	return time.Time{}, false
}

// The interval check: subscriptions at conflateIntervalMS, records every
// intervalRecordPeriod for intervalStream.
const (
	conflateIntervalMS   = 250
	intervalRecordPeriod = 5 * time.Millisecond
	// intervalStream ends mid-interval: the last record waits about half an interval, not
	// (as when the stream spans whole intervals from the first record) nearly all of one.
	intervalStream = 2*time.Second + 100*time.Millisecond
	// intervalTick is the servers' conflation clock: an interval ends up to one tick late.
	intervalTick = 50 * time.Millisecond
	// arrivalJitter is what the suite allows between two clients' receipt of one frame.
	arrivalJitter = 50 * time.Millisecond
)

func intervalBudget(c Config) time.Duration {
	return max(c.CheckTimeout, intervalStream+10*time.Second)
}

// checkConflateInterval subscribes one client at 250 ms to a channel, and a plain one (on
// its own connection: one topic, one interval) as the clock. The channel's first record
// goes at once; then records every 5 ms for 2.1 s arrive at most once per interval, each
// with the count of those it replaced, and the last one within an interval of its
// production.
func checkConflateInterval(ctx context.Context, s *suite) (string, error) {
	topic := s.cfg.Topic
	key := s.key("cfint")
	ch := s.channel(key)
	interval := conflateIntervalMS * time.Millisecond
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := subscribeConflated(ctx, c, "iv", conflateEvery(conflateIntervalMS), ch); err != nil {
		return "", err
	}
	plain, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", err
	}
	defer plain.close()
	want := keyRecords{}
	value := func(i int) record { return record{key: &key, value: fmt.Appendf(nil, `{"n":%d}`, i)} }

	// The key has had no record: its first goes at once.
	sent := time.Now()
	first, err := s.prod.send(value(0))
	if err != nil {
		return "", err
	}
	want.add(ch, first)
	if _, err := c.waitFor(ctx, "the first record at an interval", at(topic, first)); err != nil {
		return "", err
	}
	if _, err := plain.waitFor(ctx, "the first record on the plain subscriber", at(topic, first)); err != nil {
		return "", err
	}
	tc, _ := arrival(c, at(topic, first))
	tp, _ := arrival(plain, at(topic, first))
	if lag := tc.Sub(tp); lag > intervalTick+arrivalJitter {
		return "", fmt.Errorf("the first record of a quiet channel arrived %v after the plain subscriber's copy (%v after production), want it at once", lag.Round(time.Millisecond), tc.Sub(sent).Round(time.Millisecond))
	}
	firstLatency := tc.Sub(sent)

	n := int(intervalStream / intervalRecordPeriod)
	start := time.Now()
	ps, err := produceEvery(ctx, s, intervalRecordPeriod, n, func(i int) record { return value(i + 1) }, want)
	if err != nil {
		return "", err
	}
	stream := time.Since(start)
	k := conflateKey{ch, first.partition}
	last := ps[len(ps)-1]
	if _, err := plain.waitFor(ctx, "the last record on the plain subscriber", at(topic, last)); err != nil {
		return "", err
	}
	if _, err := c.waitFor(ctx, "the last record at an interval", at(topic, last)); err != nil {
		return "", err
	}
	if err := c.ping(ctx, "after"); err != nil {
		return "", err
	}
	tl, _ := arrival(c, at(topic, last))
	tpl, _ := arrival(plain, at(topic, last))
	if late := tl.Sub(tpl); late > interval+intervalTick+arrivalJitter {
		return "", fmt.Errorf("the last record arrived %v after the plain subscriber's copy, want within the interval %v (+%v tick)", late.Round(time.Millisecond), interval, intervalTick)
	}
	t, err := verifyConflated(c.items(), topic, want)
	if err != nil {
		return "", err
	}
	if err := checkLatest(t, want, map[conflateKey]string{k: fmt.Sprintf(`{"n":%d}`, n)}); err != nil {
		return "", err
	}
	ms := t.delivered[k]
	if t.lines > 0 {
		return "", fmt.Errorf("%d conflated lines to a subscription at an interval, want the count in its messages", t.lines)
	}
	if t.fields == 0 {
		return "", fmt.Errorf("%d records in %v to a channel at %v arrived in %d messages, none with a \"conflated\" count", n+1, stream.Round(time.Millisecond), interval, len(ms))
	}
	if most := int(stream/interval) + 3; len(ms)-1 > most {
		return "", fmt.Errorf("%d messages for %d records produced over %v at %v, want at most %d", len(ms)-1, n, stream.Round(time.Millisecond), interval, most)
	}
	minGap := time.Duration(-1)
	for i := 1; i < len(ms); i++ {
		gap := ms[i].at.Sub(ms[i-1].at)
		if gap < interval-intervalTick {
			return "", fmt.Errorf("messages %d and %d of %s (offsets %d, %d) arrived %v apart, want at least the interval %v (less a %v tick)", i, i+1, ch, *ms[i-1].env.Offset, *ms[i].env.Offset, gap.Round(time.Millisecond), interval, intervalTick)
		}
		if minGap < 0 || gap < minGap {
			minGap = gap
		}
	}
	return fmt.Sprintf("first at once (%v after production); %d records over %v in %d messages at least %v apart, %d skipped and counted; the last %v after the plain copy", firstLatency.Round(time.Millisecond), n, stream.Round(time.Millisecond), len(ms)-1, minGap.Round(time.Millisecond), t.skipped, tl.Sub(tpl).Round(time.Millisecond)), nil
}

// behindRecordBytes is the size of each record of checkConflateBehind.
const behindRecordBytes = 1024

func behindBudget(c Config) time.Duration { return max(c.CheckTimeout, 40*time.Second) }

// behindPause is how long checkConflateBehind does not read after the flood starts:
// longer than the servers' 1 s mark of a write that waits for the socket (a client not
// draining), well inside WS_WRITE_TIMEOUT (Validate wants 2 s or more) and the time a
// server ping may wait for its pong.
func behindPause(c Config) time.Duration { return min(1500*time.Millisecond, c.WriteTimeout/2) }

// behindFinal is how long before the end of the pause the final records are produced.
const behindFinal = 300 * time.Millisecond

// checkConflateBehind subscribes behind to two channels of one partition and one of
// another, with a small socket receive buffer, stops reading, and produces, round robin,
// twice WS_SEND_QUEUE_MESSAGES records of 1 KB (at least 6 MB, more than a socket's
// buffers take); the last record of each channel comes after more than 1 s without
// reading, when a plain subscriber would be cut as slow. The last record of the first
// channel is empty. When the client reads again, every skipped record must have been
// announced, each key's last record must have arrived, and the connection must be open.
func checkConflateBehind(ctx context.Context, s *suite, kv *kafkaView) (string, error) {
	topic := s.cfg.Topic
	kA, pA, err := s.keyIn(kv, "cfbehind", anyPartition)
	if err != nil {
		return "", err
	}
	kB, _, err := s.keyIn(kv, "cfbehind", func(p int32) bool { return p == pA })
	if err != nil {
		return "", err
	}
	keys := []string{kA, kB}
	if len(kv.parts) > 1 {
		kC, _, err := s.keyIn(kv, "cfbehind", func(p int32) bool { return p != pA })
		if err != nil {
			return "", err
		}
		keys = append(keys, kC)
	}
	channels := make([]string, len(keys))
	for i, k := range keys {
		channels[i] = s.channel(k)
	}

	conn, err := s.rawDial(ctx)
	if err != nil {
		return "", err
	}
	var c *client
	defer func() {
		if c != nil {
			c.close()
		} else {
			_ = conn.CloseNow()
		}
	}()
	sub, _ := json.Marshal(conflateRequest("behind", conflateBehind, false, channels...))
	if err := conn.Write(ctx, websocket.MessageText, sub); err != nil {
		return "", fmt.Errorf("subscribe: %w", err)
	}
	if err := waitSubscribed(ctx, conn, "behind"); err != nil {
		return "", err
	}

	queue := s.cfg.SendQueueMessages
	if queue == 0 {
		queue = 4096 // the README default
	}
	rounds := max(2*queue, 6000) / len(keys)
	rs := make([]record, 0, rounds*len(keys))
	for i := range rounds {
		for j := range keys {
			v := paddedValue(behindRecordBytes)
			copy(v[len(`{"pad":"`):], fmt.Sprintf("%06d", i))
			if j == 0 && i == rounds-1 {
				v = []byte{}
			}
			rs = append(rs, record{key: &keys[j], value: v})
		}
	}
	flood, final := rs[:len(rs)-len(keys)], rs[len(rs)-len(keys):]
	pause := behindPause(s.cfg)
	type burst struct {
		ps   []produced
		took time.Duration // to produce the flood
		err  error
	}
	done := make(chan burst, 1)
	start := time.Now()
	go func() {
		ps, err := s.prod.sendBurst(flood)
		took := time.Since(start)
		if err == nil {
			// The final records come while the client has not read for more than 1 s: a
			// client that is not draining, past a limit, is cut as slow unless it conflates.
			select {
			case <-time.After(time.Until(start.Add(pause - behindFinal))):
			case <-ctx.Done():
			}
			for _, r := range final {
				var p produced
				if p, err = s.prod.send(r); err != nil {
					break
				}
				ps = append(ps, p)
			}
		}
		done <- burst{ps, took, err}
	}()
	select {
	case <-time.After(pause):
	case <-ctx.Done():
	}
	c = s.newClient(conn)
	b := <-done // the producer's own timeouts bound it
	if b.err != nil {
		return "", b.err
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	want := keyRecords{}
	value := map[produced][]byte{}
	for i, p := range b.ps {
		want.add(s.channel(*rs[i].key), p)
		value[p] = rs[i].value
	}
	data := map[conflateKey]string{}
	for k, offs := range want {
		slices.Sort(offs)
		v := value[produced{k.partition, want.last(k)}]
		data[k] = string(v)
		if len(v) == 0 {
			data[k] = "null"
		}
	}
	if kAKey := (conflateKey{channels[0], pA}); data[kAKey] != "null" {
		return "", fmt.Errorf("the broker did not keep the order of the records of %s: the empty one is not last", kAKey)
	}
	for k := range want {
		last := produced{k.partition, want.last(k)}
		_, err := c.waitFor(ctx, "the last record of "+k.String(), at(topic, last))
		if err == nil {
			continue
		}
		if code, reason, cut := c.closedWith(); cut {
			return "", fmt.Errorf("%d records of %d bytes to %d channels, not read for %v: the client conflating behind was cut (close %d %q), want it never judged slow", len(rs), behindRecordBytes, len(keys), pause, code, reason)
		}
		return "", fmt.Errorf("%d records of %d bytes to %d channels, not read for %v: %w", len(rs), behindRecordBytes, len(keys), pause, err)
	}
	if err := c.ping(ctx, "after"); err != nil {
		return "", fmt.Errorf("a client conflating behind must stay connected after the last records: %w", err)
	}
	t, err := verifyConflated(c.items(), topic, want)
	if err != nil {
		return "", err
	}
	if err := checkLatest(t, want, data); err != nil {
		return "", err
	}
	if t.lines == 0 {
		return "", fmt.Errorf("%d records of %d bytes to %d channels (the flood produced in %v), not read for %v, all %d delivered without a conflated line: the client was never behind, or the server does not conflate", len(rs), behindRecordBytes, len(keys), b.took.Round(time.Millisecond), pause, t.deliveredOf())
	}
	if t.fields > 0 {
		return "", fmt.Errorf("%d messages with a \"conflated\" count to a subscription behind, want conflated lines", t.fields)
	}
	return fmt.Sprintf("%d records of %d bytes to %d channels (the flood produced in %v), not read for %v: %d delivered, %d conflated lines announcing %d skipped", len(rs), behindRecordBytes, len(keys), b.took.Round(time.Millisecond), pause, t.deliveredOf(), t.lines, t.skipped), nil
}
