package load

// A failover run's own figures: from the groups' merged accounting, A's end and the
// publishing step's start, what the resumes came to and when, and what went wrong.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/scrape"
)

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
