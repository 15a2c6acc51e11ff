package load

// The failover scenario, client side (docs/PROTOCOL.md "Positions and resume"): clients
// subscribe positioned on instance A and keep, per topic and partition, the highest offset
// they have processed; when A's connection ends (A killed, or drained with a draining line
// and a 1001 close) each reconnects to instance B after a jittered delay and resumes with
// one subscribe of all its channels carrying its epochs and positions. Its sequence
// trackers carry on across the reconnect, so a record B replays twice, misses or reorders
// counts as a duplicate, a loss or out of order on the channel, as on any other run.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/loadtest/internal/frame"
	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/scrape"
)

// How instance A is ended (Failover.Signal).
const (
	SignalKill = "SIGKILL" // no warning: the clients see their sockets end
	SignalTerm = "SIGTERM" // drain: a draining line with positions and a delay, then 1001
)

// Failover describes a failover run. The scenario's Conns clients connect to URL
// (instance A) and subscribe positioned; Standby more connect to Failover.URL (instance B)
// and stay there for the whole run. At At into the (single) publishing step the runner's
// hook ends A; its clients reconnect to B and resume. The step goes on until every A
// client has its recovered line (or Deadline has passed since A's end), then Tail more,
// and ends there (its duration is only the bound).
type Failover struct {
	// Signal is SignalKill or SignalTerm; the runner's hook sends it to A.
	Signal string `json:"signal"`
	// URL is instance B's WebSocket URL (the bench fills it in).
	URL string `json:"url,omitempty"`
	// Standby is the number of clients on B from the start (B's already-connected
	// clients), indexes Conns to Conns+Standby-1.
	Standby int `json:"standby_conns"`
	// At is how long into the publishing step A is ended.
	At Duration `json:"at"`
	// Window spreads the reconnects of clients that got no draining line (all of them
	// after a SIGKILL) uniformly over [0, Window) after their connection ended. A client
	// that got a draining line waits its reconnect_after_ms instead.
	Window Duration `json:"reconnect_window"`
	// Tail is how long the load goes on once every A client has resumed.
	Tail Duration `json:"tail"`
	// Deadline bounds the wait, from A's end, for every A client to resume.
	Deadline Duration `json:"deadline"`
}

func (f *Failover) validate(s *Scenario) error {
	switch {
	case f.Signal != SignalKill && f.Signal != SignalTerm:
		return fmt.Errorf("failover signal %q: want %s or %s", f.Signal, SignalKill, SignalTerm)
	case s.Mode != ModeBroadcast:
		return errors.New("failover needs broadcast mode (records to count across the reconnect)")
	case len(s.Steps) != 1:
		return fmt.Errorf("failover runs one publishing step (A is ended within it), not %d", len(s.Steps))
	case s.Generic() || len(s.Send) > 0:
		return errors.New("failover speaks this repository's protocol: no send texts or ts-path")
	case s.SlowFraction > 0:
		return errors.New("failover has no slow consumers")
	case f.Standby < 0:
		return fmt.Errorf("failover standby clients %d: need >= 0", f.Standby)
	case f.At <= 0 || f.At >= s.Steps[0].Duration:
		return fmt.Errorf("failover at %s: need inside the step (0, %s)", f.At.D(), s.Steps[0].Duration.D())
	case f.Window < 0 || f.Tail < 0:
		return errors.New("failover reconnect window and tail must be >= 0")
	case f.Deadline <= 0:
		return errors.New("failover deadline must be positive")
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("failover url %q: want ws://host:port/path", f.URL)
	}
	if !s.AllowRemote {
		if err := requireLoopback(u.Hostname()); err != nil {
			return fmt.Errorf("failover url %q: %w (pass --allow-remote to permit)", f.URL, err)
		}
	}
	return nil
}

// jitter is client idx's reconnect delay after a connection ended without a draining line:
// uniform over [0, Window), the same for the same seed and index on every run.
func (f *Failover) jitter(seed uint64, idx int) time.Duration {
	if f.Window <= 0 {
		return 0
	}
	r := rand.New(rand.NewPCG(seed^0x6661696c6f766572, uint64(idx)))
	return time.Duration(r.Int64N(int64(f.Window)))
}

// Stages of a failover client.
const (
	stageConnecting uint8 = iota // dialling and subscribing (A, or B for a standby client)
	stageOnA                     // subscribed on A
	stageLeft                    // A's connection ended: waiting out the delay, dialling B
	stageResuming                // resume sent to B, no subscribed reply yet
	stageRecovering              // subscribed (recovering) on B: the replay
	stageLive                    // recovered line received: live on B
	stageFailed                  // the resume ended without a recovered line
)

// unfinishedNames names, for the figures, the stage an A client was left in when the run
// ended before its resume did.
var unfinishedNames = map[uint8]string{
	stageOnA:        "still_on_a",
	stageLeft:       "not_reconnected",
	stageResuming:   "no_subscribed_reply",
	stageRecovering: "no_recovered_line",
}

// dialAttempts bounds a failover client's handshakes with B; between attempts it waits
// attempt x dialBackoff (jittered by nothing: B is up, a refusal is a finding).
const (
	dialAttempts = 3
	dialBackoff  = 250 * time.Millisecond
)

// foState is a failover client's state; only its connection goroutine touches it.
type foState struct {
	standby bool
	stage   uint8
	epochs  map[string]string
	pos     positions
	// drainNs is when the draining line arrived (0: none) and drainAfter its delay.
	drainNs    int64
	drainAfter time.Duration
	// leftNs: A's connection ended; resumeNs: resume sent; doneNs: recovered line read.
	leftNs, resumeNs, doneNs int64
	// replay counts messages received between the recovering reply and the recovered line.
	replay int64
}

// partPos is a partition's position; topicPos a topic's.
type partPos struct {
	part int32
	off  int64
}

type topicPos struct {
	topic string
	parts []partPos
}

// positions are a client's Kafka positions: per topic and partition the highest offset
// processed. A client has a topic or two of a few partitions: slices beat maps here.
type positions []topicPos

// topicOf finds or adds topic; comparing string(b) does not allocate.
func (ps *positions) topicOf(topic []byte) *topicPos {
	for i := range *ps {
		if (*ps)[i].topic == string(topic) {
			return &(*ps)[i]
		}
	}
	*ps = append(*ps, topicPos{topic: string(topic)})
	return &(*ps)[len(*ps)-1]
}

// raise moves the position of topic/part up to off (never down).
func (ps *positions) raise(topic []byte, part int32, off int64) {
	tp := ps.topicOf(topic)
	for i := range tp.parts {
		if tp.parts[i].part == part {
			tp.parts[i].off = max(tp.parts[i].off, off)
			return
		}
	}
	tp.parts = append(tp.parts, partPos{part: part, off: off})
}

// raiseWire applies {"<partition>":offset} of topic.
func (ps *positions) raiseWire(topic string, parts map[string]int64) error {
	for k, off := range parts {
		p, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			return fmt.Errorf("positions of %q: partition %q: %w", topic, k, err)
		}
		ps.raise([]byte(topic), int32(p), off)
	}
	return nil
}

// wire is the positions as a resume carries them: {topic: {"<partition>": offset}}.
func (ps positions) wire() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(ps))
	for _, tp := range ps {
		m := make(map[string]int64, len(tp.parts))
		for _, p := range tp.parts {
			m[strconv.Itoa(int(p.part))] = p.off
		}
		out[tp.topic] = m
	}
	return out
}

// ctlLine is every field of the lines a failover client decodes in full: subscribed,
// recovered, draining, mark, gap, skipped. They are few (marks every WS_MARK_INTERVAL),
// so encoding/json is cheap enough; messages go through frame.Scan.
type ctlLine struct {
	Op               string            `json:"op"`
	ID               string            `json:"id"`
	Recovering       bool              `json:"recovering"`
	Recovered        *bool             `json:"recovered"`
	Source           string            `json:"source"`
	Reason           string            `json:"reason"`
	Replayed         int64             `json:"replayed"`
	ReconnectAfterMs *int64            `json:"reconnect_after_ms"`
	Topic            string            `json:"topic"`
	Partition        int32             `json:"partition"`
	Offset           *int64            `json:"offset"`
	To               *int64            `json:"to"`
	Epochs           map[string]string `json:"epochs"`
	Positions        json.RawMessage   `json:"positions"`
}

var keyOp = []byte(`"op":"`)

// lineOp is the op of a line, without decoding it: the server writes "op" first.
func lineOp(line []byte) []byte {
	i := bytes.Index(line, keyOp)
	if i < 0 {
		return nil
	}
	rest := line[i+len(keyOp):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// apply takes the epochs and the {topic: {partition: offset}} positions of a subscribed,
// recovered or draining line into the client's.
func (fo *foState) apply(l *ctlLine) error {
	for t, e := range l.Epochs {
		if fo.epochs == nil {
			fo.epochs = map[string]string{}
		}
		fo.epochs[t] = e
	}
	if len(l.Positions) == 0 || string(l.Positions) == "null" {
		return nil
	}
	var pos map[string]map[string]int64
	if err := json.Unmarshal(l.Positions, &pos); err != nil {
		return fmt.Errorf("%s positions: %w", l.Op, err)
	}
	for t, parts := range pos {
		if err := fo.pos.raiseWire(t, parts); err != nil {
			return err
		}
	}
	return nil
}

// message takes a message's position; the caller holds the connection's shard lock.
// A record's topic is its channel's part before the first ':' (the server refuses a
// channel header of another topic), so the line needs no further scan.
func (fo *foState) message(f *frame.Fields) {
	if f.Offset >= 0 {
		topic := f.Channel
		if i := bytes.IndexByte(topic, ':'); i >= 0 {
			topic = topic[:i]
		}
		fo.pos.raise(topic, f.Partition, f.Offset)
	}
	if fo.stage == stageRecovering {
		fo.replay++
	}
}

// foGroup is a group's failover accounting; group.mu guards it.
type foGroup struct {
	left         map[string]int64
	draining     int64
	delay        *latency.Histogram
	handshake    *latency.Histogram
	resume       *latency.Histogram
	resumes      int64
	retries      int64
	recovered    map[string]int64
	notRecovered map[string]int64
	failed       map[string]int64
	replayed     int64
	gaps         int64
	badLines     int64
	firstResume  int64
}

func newFoGroup() *foGroup {
	return &foGroup{
		left: map[string]int64{}, recovered: map[string]int64{}, notRecovered: map[string]int64{}, failed: map[string]int64{},
		delay: latency.New(), handshake: latency.New(), resume: latency.New(),
	}
}

// slotNs is the width of the standby clients' latency slots: their messages are binned by
// receive time so the runner can cut the latencies before A's end from those of the storm.
const slotNs = int64(250 * time.Millisecond)

// standbyLatency records a standby client's message latency in its receive-time slot; the
// caller holds a shard lock (lock order: shard.mu, then slotMu).
func (g *group) standbyLatency(now, us int64) {
	slot := now / slotNs
	g.slotMu.Lock()
	h := g.slots[slot]
	if h == nil {
		h = latency.New()
		g.slots[slot] = h
	}
	h.RecordMicros(us)
	g.slotMu.Unlock()
}

// foSubscribed handles a subscribed reply of a failover client: the positioned subscribe on
// A (or B, standby), or the resume's reply on B. The caller holds the shard lock.
func (g *group) foSubscribed(cs *connState, line []byte, subStart time.Time) {
	fo := cs.fo
	var l ctlLine
	err := json.Unmarshal(line, &l)
	if err == nil {
		err = fo.apply(&l)
	}
	if err != nil {
		g.mu.Lock()
		g.fo.badLines++
		g.mu.Unlock()
	}
	switch fo.stage {
	case stageConnecting:
		if l.ID != subscribeID {
			return
		}
		g.markSubscribed(cs, subStart)
		fo.stage = stageOnA
		if !fo.standby {
			g.awaiting.Add(1)
		}
	case stageResuming:
		if l.ID != subscribeID {
			return
		}
		if !l.Recovering {
			// A resume answered as a plain subscribe: live, with no replay and no recovered
			// line to wait for.
			g.resumeFailed(cs, "not_recovering")
			return
		}
		fo.stage = stageRecovering
	}
}

// foControl handles the lines frame.Scan does not classify (Kind Other) of a failover
// client. The caller holds the shard lock.
func (g *group) foControl(cs *connState, line []byte, now int64) {
	fo := cs.fo
	op := lineOp(line)
	switch string(op) {
	case "mark", "draining", "recovered", "gap", "skipped":
	default:
		return
	}
	var l ctlLine
	if err := json.Unmarshal(line, &l); err != nil {
		g.mu.Lock()
		g.fo.badLines++
		g.mu.Unlock()
		return
	}
	var err error
	switch l.Op {
	case "mark":
		var parts map[string]int64
		if err = json.Unmarshal(l.Positions, &parts); err == nil {
			err = fo.pos.raiseWire(l.Topic, parts)
		}
	case "skipped":
		if l.Offset != nil {
			fo.pos.raise([]byte(l.Topic), l.Partition, *l.Offset)
		}
	case "gap":
		if l.To != nil {
			fo.pos.raise([]byte(l.Topic), l.Partition, *l.To)
		}
		g.mu.Lock()
		g.fo.gaps++
		g.mu.Unlock()
	case "draining":
		err = fo.apply(&l)
		fo.drainNs = now
		if l.ReconnectAfterMs != nil {
			fo.drainAfter = time.Duration(*l.ReconnectAfterMs) * time.Millisecond
		}
		g.mu.Lock()
		g.fo.draining++
		g.mu.Unlock()
	case "recovered":
		err = fo.apply(&l)
		if (fo.stage == stageRecovering || fo.stage == stageResuming) && l.ID == subscribeID {
			g.recovered(cs, &l, now)
		}
	}
	if err != nil {
		g.mu.Lock()
		g.fo.badLines++
		g.mu.Unlock()
	}
}

// recovered ends a resume with its recovered line.
func (g *group) recovered(cs *connState, l *ctlLine, now int64) {
	fo := cs.fo
	fo.stage, fo.doneNs = stageLive, now
	g.awaiting.Add(-1)
	g.resumed.Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case l.Recovered != nil && *l.Recovered:
		g.fo.recovered[orNone(l.Source)]++
	default:
		g.fo.notRecovered[orNone(l.Reason)]++
	}
	g.fo.replayed += l.Replayed
	g.fo.resume.RecordMicros((now - fo.resumeNs) / 1e3)
}

// resumeFailed ends a resume that will get no recovered line.
func (g *group) resumeFailed(cs *connState, cause string) {
	cs.fo.stage = stageFailed
	g.awaiting.Add(-1)
	g.resumed.Add(1)
	g.mu.Lock()
	g.fo.failed[cause]++
	g.mu.Unlock()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// failover is an A client's life after A's connection ended (left, as the read loop saw
// it): wait, dial B, resume, read on until the run ends.
func (g *group) failover(ctx context.Context, k, idx int, cs *connState, left error) {
	fo := cs.fo
	now := time.Now()
	fo.stage, fo.leftNs = stageLeft, now.UnixNano()
	at := now.Add(g.sc.Failover.jitter(g.sc.Seed, idx))
	if fo.drainNs > 0 {
		at = time.Unix(0, fo.drainNs).Add(fo.drainAfter)
	}
	g.mu.Lock()
	g.fo.left[closeCause(ctx, left)]++
	g.fo.delay.Record(at.Sub(now))
	g.mu.Unlock()
	g.left.Add(1)
	if !sleepUntil(ctx, at) {
		return
	}

	var c *websocket.Conn
	var start time.Time
	for attempt := 1; ; attempt++ {
		start = time.Now()
		hctx, cancel := context.WithTimeout(ctx, g.sc.HandshakeTimeout.D())
		var resp *http.Response
		var err error
		c, resp, err = websocket.Dial(hctx, g.sc.Failover.URL, &websocket.DialOptions{HTTPClient: g.dialers.pick(idx, false)})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == dialAttempts {
			g.resumeFailed(cs, "dial_"+dialCause(ctx, resp, err))
			return
		}
		g.mu.Lock()
		g.fo.retries++
		g.mu.Unlock()
		if !sleepUntil(ctx, time.Now().Add(time.Duration(attempt)*dialBackoff)) {
			return
		}
	}
	defer c.CloseNow()
	if !g.track(c) {
		return
	}
	defer g.untrack(c)
	c.SetReadLimit(readLimit)

	resumeStart := time.Now()
	fo.stage, fo.resumeNs = stageResuming, resumeStart.UnixNano()
	g.mu.Lock()
	g.fo.handshake.Record(resumeStart.Sub(start))
	g.fo.resumes++
	if g.fo.firstResume == 0 || fo.resumeNs < g.fo.firstResume {
		g.fo.firstResume = fo.resumeNs
	}
	g.mu.Unlock()
	if err := g.sendResume(ctx, c, cs); err != nil {
		g.resumeFailed(cs, "send_"+closeCause(ctx, err))
		return
	}
	code, err := g.read(ctx, c, k, cs, resumeStart)
	switch {
	case code != "":
		g.resumeFailed(cs, "error_"+code)
	case err == nil || ctx.Err() != nil:
		// The run ended; a resume still under way counts as unfinished in the result.
	case fo.stage == stageLive || fo.stage == stageFailed:
		g.ended(ctx, cs, err)
	default:
		g.resumeFailed(cs, "closed_"+closeCause(ctx, err))
	}
}

// sendResume sends one subscribe of all the client's channels with its epochs and
// positions. A client without positions (its subscribed reply carried none) subscribes
// plainly: its resume cannot be made, which the missing recovered line will show.
func (g *group) sendResume(ctx context.Context, c *websocket.Conn, cs *connState) error {
	type resume struct {
		Epochs    map[string]string           `json:"epochs,omitempty"`
		Positions map[string]map[string]int64 `json:"positions"`
	}
	req := struct {
		Op       string   `json:"op"`
		ID       string   `json:"id"`
		Channels []string `json:"channels"`
		Resume   *resume  `json:"resume,omitempty"`
	}{Op: "subscribe", ID: subscribeID}
	for _, ch := range cs.channels {
		req.Channels = append(req.Channels, g.names[ch])
	}
	if len(cs.fo.pos) > 0 {
		req.Resume = &resume{Epochs: cs.fo.epochs, Positions: cs.fo.pos.wire()}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode resume: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, g.sc.SubscribeTimeout.D())
	defer cancel()
	return c.Write(wctx, websocket.MessageText, b)
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// GroupFailover is one group's failover accounting.
type GroupFailover struct {
	// Clients are A clients that subscribed on A; Standby standby clients that subscribed
	// on B.
	Clients int64 `json:"clients"`
	Standby int64 `json:"standby"`
	// Left counts A connections that ended, by cause; LeftNs are their Unix times.
	Left   map[string]int64 `json:"left"`
	LeftNs []int64          `json:"left_ns,omitempty"`
	// Draining counts draining lines received.
	Draining int64 `json:"draining"`
	// Delay is the reconnect delays the clients waited (draining line's or jitter).
	Delay *latency.Histogram `json:"delay"`
	// Handshake is B's handshakes; Resume is from resume request to recovered line.
	Handshake *latency.Histogram `json:"handshake"`
	Resume    *latency.Histogram `json:"resume"`
	// Resumes counts resume requests sent; Retries handshakes with B retried.
	Resumes int64 `json:"resumes"`
	Retries int64 `json:"retries"`
	// Recovered counts recovered lines with "recovered":true by source, NotRecovered the
	// others by reason; Failed resumes that got no recovered line, by cause; Unfinished A
	// clients whose resume had not ended when the run did, by stage.
	Recovered    map[string]int64 `json:"recovered"`
	NotRecovered map[string]int64 `json:"not_recovered"`
	Failed       map[string]int64 `json:"failed"`
	Unfinished   map[string]int64 `json:"unfinished"`
	// Done are the resumes that got their recovered line: request and line times;
	// FirstResumeNs is the first resume request's.
	Done          []ResumeSpan `json:"done,omitempty"`
	FirstResumeNs int64        `json:"first_resume_ns"`
	// Replayed sums the recovered lines' replayed counts (the server's); ReplayReceived
	// the messages the clients read between the recovering reply and the recovered line.
	Replayed       int64 `json:"replayed"`
	ReplayReceived int64 `json:"replay_received"`
	// Gaps counts gap lines; BadLines control lines that did not decode.
	Gaps     int64 `json:"gaps"`
	BadLines int64 `json:"bad_lines"`
	// Slots are the standby clients' message latencies by receive time, slot i covering
	// [i, i+1) x SlotNs Unix nanoseconds.
	Slots  map[int64]*latency.Histogram `json:"slots,omitempty"`
	SlotNs int64                        `json:"slot_ns"`
}

// ResumeSpan is one resume, from its request to its recovered line (Unix nanoseconds).
type ResumeSpan struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// busy is how long at least one of spans was under way: the length of their union.
func busy(spans []ResumeSpan) time.Duration {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b ResumeSpan) int { return cmp.Compare(a.From, b.From) })
	var total, end int64
	for _, sp := range s {
		from := max(sp.From, end)
		if sp.To > from {
			total += sp.To - from
		}
		end = max(end, sp.To)
	}
	return time.Duration(total)
}

// failoverResult collects the group's failover figures once its goroutines have ended.
func (g *group) failoverResult() *GroupFailover {
	f := g.fo
	r := &GroupFailover{
		Left: f.left, Draining: f.draining, Delay: f.delay, Handshake: f.handshake, Resume: f.resume,
		Resumes: f.resumes, Retries: f.retries, Recovered: f.recovered, NotRecovered: f.notRecovered,
		Failed: f.failed, Unfinished: map[string]int64{}, FirstResumeNs: f.firstResume,
		Replayed: f.replayed, Gaps: f.gaps, BadLines: f.badLines, Slots: g.slots, SlotNs: slotNs,
	}
	for k := range g.conns {
		fo := g.conns[k].fo
		if fo == nil || fo.stage == stageConnecting {
			continue
		}
		if fo.standby {
			r.Standby++
			continue
		}
		r.Clients++
		if fo.leftNs > 0 {
			r.LeftNs = append(r.LeftNs, fo.leftNs)
		}
		if fo.doneNs > 0 {
			r.Done = append(r.Done, ResumeSpan{From: fo.resumeNs, To: fo.doneNs})
		}
		r.ReplayReceived += fo.replay
		if name, ok := unfinishedNames[fo.stage]; ok {
			r.Unfinished[name]++
		}
	}
	return r
}

// merge folds another group's failover figures into f.
func (f *GroupFailover) merge(o *GroupFailover) {
	f.Clients += o.Clients
	f.Standby += o.Standby
	f.Draining += o.Draining
	f.Resumes += o.Resumes
	f.Retries += o.Retries
	f.Replayed += o.Replayed
	f.ReplayReceived += o.ReplayReceived
	f.Gaps += o.Gaps
	f.BadLines += o.BadLines
	f.LeftNs = append(f.LeftNs, o.LeftNs...)
	f.Done = append(f.Done, o.Done...)
	if o.FirstResumeNs > 0 && (f.FirstResumeNs == 0 || o.FirstResumeNs < f.FirstResumeNs) {
		f.FirstResumeNs = o.FirstResumeNs
	}
	for _, m := range []struct{ dst, src *map[string]int64 }{
		{&f.Left, &o.Left}, {&f.Recovered, &o.Recovered}, {&f.NotRecovered, &o.NotRecovered},
		{&f.Failed, &o.Failed}, {&f.Unfinished, &o.Unfinished},
	} {
		if *m.dst == nil {
			*m.dst = map[string]int64{}
		}
		for k, v := range *m.src {
			(*m.dst)[k] += v
		}
	}
	for _, h := range []struct{ dst, src **latency.Histogram }{
		{&f.Delay, &o.Delay}, {&f.Handshake, &o.Handshake}, {&f.Resume, &o.Resume},
	} {
		if *h.dst == nil {
			*h.dst = latency.New()
		}
		(*h.dst).Merge(*h.src)
	}
	if f.Slots == nil {
		f.Slots = map[int64]*latency.Histogram{}
	}
	for s, h := range o.Slots {
		if f.Slots[s] == nil {
			f.Slots[s] = latency.New()
		}
		f.Slots[s].Merge(h)
	}
	f.SlotNs = max(f.SlotNs, o.SlotNs)
}

// FailoverFigures are a failover run's own figures.
type FailoverFigures struct {
	Signal string `json:"signal"`
	// DeathUnixNs is when the runner signalled A (Unix nanoseconds): "A's end" below.
	DeathUnixNs int64 `json:"death_unix_ns"`
	// AtSeconds is A's end from the start of the publishing step.
	AtSeconds float64 `json:"at_seconds"`
	// Clients are A clients subscribed on A; Standby B's already-connected clients.
	Clients int64 `json:"clients"`
	Standby int64 `json:"standby"`
	// Left counts A connections that ended, by cause; LeftEarly those that ended before
	// A's end (a client the server cut, not the failover).
	Left      map[string]int64 `json:"left"`
	LeftEarly int64            `json:"left_early"`
	// DrainingLines counts draining lines received; ReconnectDelay is the delays waited.
	DrainingLines  int64           `json:"draining_lines"`
	ReconnectDelay latency.Summary `json:"reconnect_delay"`
	// Resumes counts resume requests; DialRetries B handshakes retried.
	Resumes     int64 `json:"resumes"`
	DialRetries int64 `json:"dial_retries"`
	// Recovered by source, NotRecovered by reason, Failed (no recovered line) by cause,
	// Unfinished (the run ended first) by stage.
	Recovered    map[string]int64 `json:"recovered"`
	NotRecovered map[string]int64 `json:"not_recovered"`
	Failed       map[string]int64 `json:"failed"`
	Unfinished   map[string]int64 `json:"unfinished"`
	// RecoveredAfter is, per client, from A's end to its recovered line;
	// LastRecoveredSeconds the latest of them.
	RecoveredAfter       latency.Summary `json:"recovered_after"`
	LastRecoveredSeconds float64         `json:"last_recovered_seconds"`
	// ResumeLatency is from resume request to recovered line; ReconnectHandshake B's
	// handshakes.
	ResumeLatency      latency.Summary `json:"resume_latency"`
	ReconnectHandshake latency.Summary `json:"reconnect_handshake"`
	// Replayed is the servers' replayed counts summed; ReplayReceived the messages read
	// between the recovering reply and the recovered line. ReplayWindowSeconds runs from
	// the first resume request to the last recovered line (the reconnect spread sets most
	// of it); ReplayPerSec is Replayed over it. ReplayBusySeconds is how long at least one
	// resume was under way (the union of the request-to-recovered-line spans), and
	// ReplayBusyPerSec Replayed over that: B's pace while it had replays to serve.
	Replayed            int64   `json:"replayed"`
	ReplayReceived      int64   `json:"replay_received"`
	ReplayWindowSeconds float64 `json:"replay_window_seconds"`
	ReplayPerSec        float64 `json:"replay_per_sec"`
	ReplayBusySeconds   float64 `json:"replay_busy_seconds"`
	ReplayBusyPerSec    float64 `json:"replay_busy_per_sec"`
	// Gaps counts gap lines; BadLines control lines that did not decode.
	Gaps     int64 `json:"gaps"`
	BadLines int64 `json:"bad_lines"`
	// StandbyBefore is the latency of B's already-connected clients from the start of the
	// load to A's end; StandbyStorm from A's end to the last recovered line (at least the
	// reconnect window); StandbyAfter the rest of the run. Receive-time slots of SlotNs:
	// a slot across A's end counts in the storm.
	StandbyBefore latency.Summary `json:"standby_before"`
	StandbyStorm  latency.Summary `json:"standby_storm"`
	StandbyAfter  latency.Summary `json:"standby_after"`
	StormSeconds  float64         `json:"storm_seconds"`
}

// Problem says what is wrong with the failover itself ("" when every A client resumed
// with a recovered line that said recovered); loss is judged apart, by the sequences.
func (f *FailoverFigures) Problem() string {
	var p []string
	if f.DeathUnixNs == 0 {
		p = append(p, "A was never ended")
	}
	if f.Clients == 0 {
		p = append(p, "no A client subscribed")
	}
	if n := sumMap(f.NotRecovered); n > 0 {
		p = append(p, fmt.Sprintf("%d resumes not recovered (%s)", n, scrape.FormatMap(f.NotRecovered)))
	}
	if n := sumMap(f.Failed); n > 0 {
		p = append(p, fmt.Sprintf("%d resumes failed (%s)", n, scrape.FormatMap(f.Failed)))
	}
	if n := sumMap(f.Unfinished); n > 0 {
		p = append(p, fmt.Sprintf("%d A clients had not resumed by the end (%s)", n, scrape.FormatMap(f.Unfinished)))
	}
	if f.LeftEarly > 0 {
		p = append(p, fmt.Sprintf("%d A connections ended before A did", f.LeftEarly))
	}
	if f.Gaps > 0 {
		p = append(p, fmt.Sprintf("%d gap lines", f.Gaps))
	}
	if f.BadLines > 0 {
		p = append(p, fmt.Sprintf("%d control lines did not decode", f.BadLines))
	}
	if len(p) == 0 {
		return ""
	}
	return "failover: " + strings.Join(p, "; ")
}

// failoverFigures computes a failover's figures from the groups' accounting, A's end and
// the publishing step's start.
func failoverFigures(spec *Failover, death, stepStart time.Time, g *GroupFailover, window time.Duration) *FailoverFigures {
	f := &FailoverFigures{Signal: spec.Signal}
	if g == nil {
		return f
	}
	f.Clients, f.Standby = g.Clients, g.Standby
	f.Left, f.DrainingLines = g.Left, g.Draining
	f.Resumes, f.DialRetries = g.Resumes, g.Retries
	f.Recovered, f.NotRecovered, f.Failed, f.Unfinished = g.Recovered, g.NotRecovered, g.Failed, g.Unfinished
	f.Replayed, f.ReplayReceived, f.Gaps, f.BadLines = g.Replayed, g.ReplayReceived, g.Gaps, g.BadLines
	f.ReconnectDelay = summarize(g.Delay)
	f.ResumeLatency = summarize(g.Resume)
	f.ReconnectHandshake = summarize(g.Handshake)
	if death.IsZero() {
		return f
	}
	d := death.UnixNano()
	f.DeathUnixNs = d
	if !stepStart.IsZero() {
		f.AtSeconds = death.Sub(stepStart).Seconds()
	}
	for _, t := range g.LeftNs {
		if t < d {
			f.LeftEarly++
		}
	}
	after := latency.New()
	var last int64
	for _, sp := range g.Done {
		after.RecordMicros((sp.To - d) / 1e3)
		last = max(last, sp.To)
	}
	if b := busy(g.Done); b > 0 {
		f.ReplayBusySeconds = b.Seconds()
		f.ReplayBusyPerSec = float64(g.Replayed) / f.ReplayBusySeconds
	}
	f.RecoveredAfter = after.Summarize()
	if last > 0 {
		f.LastRecoveredSeconds = float64(last-d) / 1e9
		if g.FirstResumeNs > 0 && last > g.FirstResumeNs {
			f.ReplayWindowSeconds = float64(last-g.FirstResumeNs) / 1e9
			f.ReplayPerSec = float64(g.Replayed) / f.ReplayWindowSeconds
		}
	}
	stormEnd := max(last, d+int64(window))
	f.StormSeconds = float64(stormEnd-d) / 1e9
	before, storm, rest := latency.New(), latency.New(), latency.New()
	w := max(g.SlotNs, 1)
	for s, h := range g.Slots {
		from, to := s*w, (s+1)*w
		switch {
		case to <= d:
			before.Merge(h)
		case from < stormEnd:
			storm.Merge(h)
		default:
			rest.Merge(h)
		}
	}
	f.StandbyBefore, f.StandbyStorm, f.StandbyAfter = before.Summarize(), storm.Summarize(), rest.Summarize()
	return f
}

func summarize(h *latency.Histogram) latency.Summary {
	if h == nil {
		return latency.Summary{}
	}
	return h.Summarize()
}

func sumMap(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
