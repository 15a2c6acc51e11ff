package load

// Throttled clients (Scenario.ThrottleFraction): mobile clients on a slow link, on the most
// popular channels, with "conflate" in their subscribe when the scenario asks for it. Their
// messages are counted apart from the healthy clients' (latency, received, loss), and they
// are judged on what they hold: every sampleEvery, per client and subscribed channel, the
// age of the newest value read (now minus its sent_ns), and per client how far behind it
// reads (now minus the sent_ns of the last message read). A server that conflates keeps
// the value age near the link's pace; one that does not falls further behind, or cuts.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/frame"
	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/scrape"
)

// ConflateBehind is the one conflation mode throttled clients ask for (docs/PROTOCOL.md,
// Conflation): the latest record per channel and partition while the client is behind.
const ConflateBehind = "behind"

// sampleEvery is how often the ages of the values throttled clients hold are sampled; it
// is also the width of the slots the samples are kept in, so the runner can keep those
// taken while the producer published (after it, every value only gets older).
const sampleEvery = 250 * time.Millisecond

var (
	opConflated = []byte("conflated")
	keySkipped  = []byte(`"skipped":`)
)

// thState is one throttled client's accounting. Its reader owns every field but newest,
// last and live, which the group's sampler reads.
type thState struct {
	// newest is, per subscription (connState.channels' order), the sent_ns of the newest
	// message read on it, 0 before the first; last the sent_ns of the last message read.
	newest []atomic.Int64
	last   atomic.Int64
	// live is true from the subscribed reply until the connection ends.
	live atomic.Bool

	// lastSeq is, per subscription, the sequence number of the last message read (0
	// before the first); announced the records a conflated line said were skipped since.
	lastSeq   []uint64
	announced []int64

	messages, conflatedLines, skipped, unannounced, bytes int64
	// firstRead and lastRead are when its first and last frame were read from the first
	// frame with a message on (Unix ns): the link's time in use, not the wait for the
	// producer's first record after the subscribe.
	firstRead, lastRead int64
	// cut is why the server (or the network) ended the connection; "" when the run did.
	cut string
}

func newThState(subs int) *thState {
	return &thState{newest: make([]atomic.Int64, subs), lastSeq: make([]uint64, subs), announced: make([]int64, subs)}
}

// read notes a frame of n bytes read at now, with messages in it or not.
func (th *thState) read(n int, now int64, messages bool) {
	th.bytes += int64(n)
	if th.firstRead == 0 && !messages {
		return
	}
	if th.firstRead == 0 {
		th.firstRead = now
	}
	th.lastRead = now
}

// throttledChannels are the channels a throttled client subscribes to: the n most popular
// (with a Zipf distribution channel 0 is the most popular; uniform has no hot ones, and
// these are as good as any).
func throttledChannels(n int) []int {
	chs := make([]int, n)
	for i := range chs {
		chs[i] = i
	}
	return chs
}

// subscription is the index in cs.channels of the channel named channel, -1 when none.
func (cs *connState) subscription(names []string, channel []byte) int {
	if len(channel) == 0 && len(cs.channels) == 1 {
		return 0
	}
	for i, ch := range cs.channels {
		if names[ch] == string(channel) {
			return i
		}
	}
	return -1
}

// accountThrottled records one message of a throttled client: apart from the healthy
// clients' figures. A sequence gap on a channel must match what conflated lines announced
// since its last message; what does not counts as unannounced. The caller holds sh.mu.
func (g *group) accountThrottled(sh *shard, cs *connState, f *frame.Fields, now int64) {
	th := cs.th
	th.messages++
	sh.thReceived++
	if f.SentNs > 0 {
		sh.thLatency.RecordMicros((now - f.SentNs) / 1e3)
		th.last.Store(f.SentNs)
	}
	i := cs.subscription(g.names, f.Channel)
	if i < 0 {
		return
	}
	if f.SentNs > th.newest[i].Load() {
		th.newest[i].Store(f.SentNs)
	}
	if f.Seq == 0 {
		return
	}
	if prev := th.lastSeq[i]; prev > 0 && f.Seq > prev {
		if missing := int64(f.Seq-prev-1) - th.announced[i]; missing > 0 {
			th.unannounced += missing
		}
	}
	th.lastSeq[i] = max(th.lastSeq[i], f.Seq)
	th.announced[i] = 0
}

// conflatedLine records a conflated line ({"op":"conflated","channel":…,"skipped":N,…})
// of a throttled client.
func (g *group) conflatedLine(cs *connState, line []byte) {
	th := cs.th
	th.conflatedLines++
	n, ok := intAfter(line, keySkipped)
	if !ok || n < 0 {
		return
	}
	th.skipped += n
	if i := cs.subscription(g.names, channelOf(line)); i >= 0 {
		th.announced[i] += n
	}
}

// channelOf is the "channel" string of a line (nil when none).
func channelOf(line []byte) []byte {
	i := bytes.Index(line, keyChannel)
	if i < 0 {
		return nil
	}
	rest := line[i+len(keyChannel):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

var keyChannel = []byte(`"channel":"`)

// intAfter parses the integer right after key in line.
func intAfter(line, key []byte) (int64, bool) {
	i := bytes.Index(line, key)
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	n, neg := 0, false
	if len(rest) > 0 && rest[0] == '-' {
		neg, n = true, 1
	}
	var v int64
	start := n
	for ; n < len(rest) && rest[n] >= '0' && rest[n] <= '9'; n++ {
		v = v*10 + int64(rest[n]-'0')
	}
	if n == start {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// sample records, every sampleEvery until ctx ends, the age of each value the group's live
// throttled clients hold and how far behind each reads, in the slot of the sampling time.
// Only this goroutine touches g.ages and g.behind until the group's goroutines have ended.
func (g *group) sample(ctx context.Context) {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-tick.C:
			g.sampleAt(t.UnixNano())
		}
	}
}

func (g *group) sampleAt(now int64) {
	slot := now / int64(sampleEvery)
	ages, behind := g.ages[slot], g.behind[slot]
	for k := range g.conns {
		th := g.conns[k].th
		if th == nil || !th.live.Load() {
			continue
		}
		for i := range th.newest {
			if v := th.newest[i].Load(); v > 0 {
				if ages == nil {
					ages = latency.New()
					g.ages[slot] = ages
				}
				ages.RecordMicros((now - v) / 1e3)
			}
		}
		if v := th.last.Load(); v > 0 {
			if behind == nil {
				behind = latency.New()
				g.behind[slot] = behind
			}
			behind.RecordMicros((now - v) / 1e3)
		}
	}
}

// GroupThrottled is one group's throttled clients' accounting.
type GroupThrottled struct {
	Clients    int64 `json:"clients"`
	Subscribed int64 `json:"subscribed"`
	// Cut counts throttled clients the server (or the network) disconnected, by cause.
	Cut      map[string]int64 `json:"cut"`
	Messages int64            `json:"messages"`
	Bytes    int64            `json:"bytes"`
	// ReadSeconds is the sum over the clients of the time from their first frame with a
	// message to their last frame: Bytes over it is what a link carried while in use.
	ReadSeconds    float64            `json:"read_seconds"`
	ConflatedLines int64              `json:"conflated_lines"`
	Skipped        int64              `json:"skipped"`
	Unannounced    int64              `json:"unannounced"`
	Latency        *latency.Histogram `json:"latency"`
	// Ages and Behind are the samples (microseconds) by sampling time, slot i covering
	// [i, i+1) x SlotNs Unix nanoseconds.
	Ages   map[int64]*latency.Histogram `json:"ages,omitempty"`
	Behind map[int64]*latency.Histogram `json:"behind,omitempty"`
	SlotNs int64                        `json:"slot_ns"`
}

// throttledResult collects the group's throttled accounting once its goroutines have ended.
func (g *group) throttledResult() *GroupThrottled {
	r := &GroupThrottled{Cut: map[string]int64{}, Latency: latency.New(), Ages: g.ages, Behind: g.behind, SlotNs: int64(sampleEvery)}
	for i := range g.shards {
		r.Latency.Merge(g.shards[i].thLatency)
	}
	for k := range g.conns {
		cs := &g.conns[k]
		th := cs.th
		if th == nil {
			continue
		}
		r.Clients++
		if cs.subscribed {
			r.Subscribed++
		}
		if th.cut != "" {
			r.Cut[th.cut]++
		}
		r.Messages += th.messages
		r.Bytes += th.bytes
		if th.lastRead > th.firstRead {
			r.ReadSeconds += float64(th.lastRead-th.firstRead) / 1e9
		}
		r.ConflatedLines += th.conflatedLines
		r.Skipped += th.skipped
		r.Unannounced += th.unannounced
	}
	return r
}

// ThrottledFigures are the throttled clients' figures (Scenario.ThrottleFraction).
type ThrottledFigures struct {
	Clients     int64   `json:"clients"`
	Subscribed  int64   `json:"subscribed"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	Conflate    string  `json:"conflate,omitempty"`
	Channels    int     `json:"channels"`
	// Cut is how many the server (or the network) disconnected; CutBy by cause.
	Cut   int64            `json:"cut"`
	CutBy map[string]int64 `json:"cut_by"`
	// Messages and Bytes are what they read, ReadPerSec the bytes per second a client
	// read from its first frame with a message to its last frame (the link's rate while
	// in use, at most BytesPerSec); ConflatedLines the conflated lines among it,
	// Skipped the records those lines announced, Unannounced the records missing from a
	// channel's sequence that no conflated line announced (a server bug).
	Messages       int64   `json:"messages"`
	Bytes          int64   `json:"bytes"`
	ReadPerSec     float64 `json:"read_per_sec"`
	ConflatedLines int64   `json:"conflated_lines"`
	Skipped        int64   `json:"skipped"`
	Unannounced    int64   `json:"unannounced"`
	// Latency is their messages' sent-to-read latency.
	Latency latency.Summary `json:"latency"`
	// ValueAge is the age of the newest value held, sampled every SampleMs per client and
	// subscribed channel (once the channel has delivered) while the producer published;
	// Behind is, sampled alike per client, the age of the last message read.
	ValueAge latency.Summary `json:"value_age"`
	Behind   latency.Summary `json:"behind"`
	SampleMs float64         `json:"sample_ms"`
}

// throttledFigures merges the groups' throttled accounting; samples count when their slot
// lies within [from, to), the publishing.
func throttledFigures(sc *Scenario, groups []*GroupResult, from, to time.Time) *ThrottledFigures {
	f := &ThrottledFigures{
		BytesPerSec: sc.ThrottleBytesPerSec, Conflate: sc.ThrottleConflate, Channels: sc.throttleSubs(),
		CutBy: map[string]int64{}, SampleMs: float64(sampleEvery.Milliseconds()),
	}
	lat, ages, behind := latency.New(), latency.New(), latency.New()
	var readSeconds float64
	for _, gr := range groups {
		t := gr.Throttled
		if t == nil {
			continue
		}
		f.Clients += t.Clients
		f.Subscribed += t.Subscribed
		for k, v := range t.Cut {
			f.CutBy[k] += v
			f.Cut += v
		}
		f.Messages += t.Messages
		f.Bytes += t.Bytes
		readSeconds += t.ReadSeconds
		f.ConflatedLines += t.ConflatedLines
		f.Skipped += t.Skipped
		f.Unannounced += t.Unannounced
		lat.Merge(t.Latency)
		mergeSlots(ages, t.Ages, t.SlotNs, from, to)
		mergeSlots(behind, t.Behind, t.SlotNs, from, to)
	}
	f.Latency, f.ValueAge, f.Behind = lat.Summarize(), ages.Summarize(), behind.Summarize()
	if readSeconds > 0 {
		f.ReadPerSec = float64(f.Bytes) / readSeconds
	}
	return f
}

// mergeSlots merges into h the slots that lie within [from, to).
func mergeSlots(h *latency.Histogram, slots map[int64]*latency.Histogram, slotNs int64, from, to time.Time) {
	w := max(slotNs, 1)
	lo, hi := from.UnixNano(), to.UnixNano()
	for s, sh := range slots {
		if s*w >= lo && (s+1)*w <= hi {
			h.Merge(sh)
		}
	}
}

// publishing is when the producer published: from the first step's start to the last
// step's end (zero times when no step ran).
func (o *orchestrator) publishing() (from, to time.Time) {
	if len(o.marks) == 0 {
		return time.Time{}, time.Time{}
	}
	last := o.marks[len(o.marks)-1]
	return o.marks[0].start, last.start.Add(last.wall)
}

// writeTable prints the throttled clients' figures in WriteTable's two columns.
func (t *ThrottledFigures) writeTable(tw io.Writer) {
	conflate := "none"
	if t.Conflate != "" {
		conflate = `"` + t.Conflate + `"`
	}
	fmt.Fprintf(tw, "throttled\t%d clients (%d subscribed) reading at most %.0f B/s, on the %d hottest channels, conflate %s: cut %d (%s)\n",
		t.Clients, t.Subscribed, t.BytesPerSec, t.Channels, conflate, t.Cut, scrape.FormatMap(t.CutBy))
	fmt.Fprintf(tw, "\tread %d messages, %d bytes (%.0f B/s per client while reading), %d conflated lines announcing %d skipped records, %d missing unannounced\n",
		t.Messages, t.Bytes, t.ReadPerSec, t.ConflatedLines, t.Skipped, t.Unannounced)
	fmt.Fprintf(tw, "\tlatest value age (every %.0fms per client and channel, while publishing) %s\n", t.SampleMs, formatSummary(t.ValueAge))
	fmt.Fprintf(tw, "\tbehind (age of the last message read) %s; latency %s\n", formatSummary(t.Behind), formatSummary(t.Latency))
}
