package load

// A group's failover accounting: what its clients' resumes came to, recorded under the
// group's locks while the run goes on, collected into GroupFailover at its end (a worker
// sends it on its result line) and merged over the groups.

import (
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
)

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

// mergeFailover folds the groups' failover accounting together (nil when none has any).
func mergeFailover(rs []*GroupResult) *GroupFailover {
	var out *GroupFailover
	for _, r := range rs {
		if r.Failover == nil {
			continue
		}
		if out == nil {
			out = &GroupFailover{}
		}
		out.merge(r.Failover)
	}
	return out
}
