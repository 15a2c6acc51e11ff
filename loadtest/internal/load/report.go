package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/scrape"
)

// Result is every figure of a run and the scenario that produced it (--out writes it).
type Result struct {
	Scenario     Scenario  `json:"scenario"`
	Started      time.Time `json:"started"`
	WallSeconds  float64   `json:"wall_seconds"`
	StepsRun     int       `json:"steps_run"`
	StoppedEarly string    `json:"stopped_early,omitempty"`

	Connections ConnFigures   `json:"connections"`
	Messages    MsgFigures    `json:"messages"`
	Steps       []StepFigures `json:"steps,omitempty"`
	Loss        LossFigures   `json:"loss"`

	ProduceErrors int64    `json:"produce_errors"`
	ProduceError  string   `json:"produce_error,omitempty"`
	GroupErrors   []string `json:"group_errors,omitempty"`

	Server    *ServerFigures   `json:"server"`
	Generator GeneratorFigures `json:"generator"`

	// Failover is a failover run's own figures.
	Failover *FailoverFigures `json:"failover,omitempty"`
	// Throttled are the throttled clients' figures (Scenario.ThrottleFraction).
	Throttled *ThrottledFigures `json:"throttled,omitempty"`

	// wall overrides the steps' durations with their wall-clock length (a failover's
	// step ends when its clients have resumed).
	wall []float64
}

// ConnFigures describe the connect phase.
type ConnFigures struct {
	Target     int              `json:"target"`
	Connected  int64            `json:"connected"`
	Subscribed int64            `json:"subscribed"`
	Slow       int64            `json:"slow"`
	Failed     int64            `json:"failed"`
	Failures   map[string]int64 `json:"failures"`
	Dropped    int64            `json:"dropped"`
	DroppedBy  map[string]int64 `json:"dropped_by"`
	Handshake  latency.Summary  `json:"handshake"`
	Subscribe  latency.Summary  `json:"subscribe"`
	// AllSubscribedSeconds is from the first dial to the last subscribed reply.
	AllSubscribedSeconds float64 `json:"all_subscribed_seconds"`
	// HandshakesPerSec is connected connections over AllSubscribedSeconds.
	HandshakesPerSec float64 `json:"handshakes_per_sec"`
}

// MsgFigures describe delivery over the whole run.
type MsgFigures struct {
	Received       int64           `json:"received"`
	ReceivedPerSec float64         `json:"received_per_sec"` // over the publishing (or hold) time
	Latency        latency.Summary `json:"latency"`
	Unparsed       int64           `json:"unparsed"`
}

// StepFigures describe one producer step.
type StepFigures struct {
	Rate           float64         `json:"rate"`
	Seconds        float64         `json:"seconds"`
	Produced       int64           `json:"produced"`
	Expected       int64           `json:"expected"`
	Received       int64           `json:"received"`
	ReceivedPerSec float64         `json:"received_per_sec"`
	Latency        latency.Summary `json:"latency"`
	Lost           int64           `json:"lost"`
	// Dropped counts connections the server ended while the step ran (seen live).
	Dropped int64 `json:"dropped"`
	// WallPerSec is what the clients received per second of wall clock while the step ran
	// (from the live counts, a second's lag at both ends), whatever step the messages
	// belonged to: under overload, the rate the server actually kept up.
	WallPerSec float64 `json:"wall_per_sec"`
	// ServerPerSec is ws_messages_delivered_total's rate over the step, and ServerCPUUs
	// the server's CPU per delivered message over it.
	ServerPerSec float64 `json:"server_per_sec"`
	ServerCPUUs  float64 `json:"server_cpu_us_per_msg"`
}

func (s *StepFigures) applyMark(m stepMark) {
	s.Dropped = m.dropped
	if secs := m.wall.Seconds(); secs > 0 {
		if m.recvEnd > 0 {
			s.WallPerSec = float64(m.recvEnd-m.recv) / secs
		}
		if m.before != nil && m.after != nil {
			d := m.after.Sub(*m.before)
			s.ServerPerSec = d.Delivered / secs
			if d.Delivered > 0 {
				s.ServerCPUUs = d.CPUSeconds / d.Delivered * 1e6
			}
		}
	}
}

// LossFigures are the loss accounting over connections open and subscribed to the end.
type LossFigures struct {
	Measured     bool     `json:"measured"`
	Expected     int64    `json:"expected"`
	Lost         int64    `json:"lost"`
	Duplicates   int64    `json:"duplicates"`
	OutOfOrder   int64    `json:"out_of_order"`
	LossyChannel []string `json:"lossy_channels,omitempty"` // up to 10 "channel=lost"
	// OK is true when messages were expected and none was lost, duplicated or reordered,
	// and no connection was dropped by the server (slow consumers excepted, they are meant
	// to be cut).
	OK bool `json:"ok"`
}

// ServerFigures are the server's own /metrics before the run, once every connection was
// subscribed (peak) and after the load, and what follows from them.
type ServerFigures struct {
	Scraped bool           `json:"scraped"`
	Errors  []string       `json:"errors,omitempty"`
	Before  scrape.Figures `json:"before"`
	Peak    scrape.Figures `json:"peak"`
	After   scrape.Figures `json:"after"`
	Delta   scrape.Figures `json:"delta"` // after minus before
	// RSSPerConnBytes is peak RSS / peak connections; RSSDeltaPerConnBytes discounts the
	// RSS before the run (the idle process).
	RSSPerConnBytes      float64 `json:"rss_per_conn_bytes"`
	RSSDeltaPerConnBytes float64 `json:"rss_delta_per_conn_bytes"`
	DeliveredPerSec      float64 `json:"delivered_per_sec"`
	CPUPerMessageUs      float64 `json:"cpu_per_message_us"`
}

// GeneratorFigures are the load generator's own CPU use.
type GeneratorFigures struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	// Cores the generator may run on (its CPU affinity) and cores of the host.
	Cores     int `json:"cores"`
	HostCores int `json:"host_cores"`
	// Share is the generator's CPU over its cores for the whole run, LoadShare the same
	// while the load ran (publishing or holding): the saturation test.
	Share     float64 `json:"share"`
	LoadShare float64 `json:"load_share"`
	// MachineShare is generator plus server CPU over every host core for the run.
	MachineShare float64  `json:"machine_share"`
	Saturated    bool     `json:"saturated"`
	Workers      int      `json:"workers"`
	SourceAddrs  []string `json:"source_addrs,omitempty"`
}

func (s *ServerFigures) note(err error) {
	if err != nil && err != errNoMetrics {
		s.Errors = append(s.Errors, err.Error())
	}
}

func (s *ServerFigures) fill(before, peak, after scrape.Figures, r *Result) {
	if r.Scenario.MetricsURL == "none" || len(s.Errors) > 0 {
		return
	}
	s.Scraped = true
	s.Before, s.Peak, s.After = before, peak, after
	s.Delta = after.Sub(before)
	if peak.Connections > 0 {
		s.RSSPerConnBytes = peak.ResidentBytes / peak.Connections
		s.RSSDeltaPerConnBytes = (peak.ResidentBytes - before.ResidentBytes) / (peak.Connections - before.Connections)
	}
	if load := r.loadSeconds(); load > 0 {
		s.DeliveredPerSec = (after.Delivered - peak.Delivered) / load
	}
	if s.Delta.Delivered > 0 {
		s.CPUPerMessageUs = s.Delta.CPUSeconds / s.Delta.Delivered * 1e6
	}
}

// loadSeconds is the publishing time (broadcast) or hold time (connect).
func (r *Result) loadSeconds() float64 {
	if r.Scenario.Mode == ModeConnect {
		return r.Scenario.Hold.D().Seconds()
	}
	var s float64
	for i := 0; i < r.StepsRun && i < len(r.Scenario.Steps); i++ {
		s += r.stepSeconds(i)
	}
	return s
}

// stepSeconds is how long step i published.
func (r *Result) stepSeconds(i int) float64 {
	if i < len(r.wall) && r.wall[i] > 0 {
		return r.wall[i]
	}
	return r.Scenario.Steps[i].Duration.D().Seconds()
}

// fill aggregates the groups' results and settles loss against the producer's counts.
func (r *Result) fill(groups []*GroupResult, produced map[string][]int64) {
	c := &r.Connections
	c.Target = r.Scenario.Clients()
	c.Failures, c.DroppedBy = map[string]int64{}, map[string]int64{}
	hs, sub, all := latency.New(), latency.New(), latency.New()
	var first, last int64
	var steps []StepResult
	for _, g := range groups {
		c.Connected += g.Connected
		c.Subscribed += g.Subscribed
		c.Slow += g.Slow
		for k, v := range g.Failures {
			c.Failures[k] += v
			c.Failed += v
		}
		for k, v := range g.Dropped {
			c.DroppedBy[k] += v
			c.Dropped += v
		}
		hs.Merge(g.Handshake)
		sub.Merge(g.Subscribe)
		if g.FirstDialNs > 0 && (first == 0 || g.FirstDialNs < first) {
			first = g.FirstDialNs
		}
		last = max(last, g.LastSubscribedNs)
		r.Messages.Received += g.Received
		r.Messages.Unparsed += g.Unparsed
		for i, s := range g.Steps {
			for len(steps) <= i {
				steps = append(steps, StepResult{Latency: latency.New()})
			}
			steps[i].Received += s.Received
			steps[i].Latency.Merge(s.Latency)
			all.Merge(s.Latency)
		}
	}
	c.Handshake, c.Subscribe = hs.Summarize(), sub.Summarize()
	if first > 0 && last > first {
		c.AllSubscribedSeconds = float64(last-first) / 1e9
		c.HandshakesPerSec = float64(c.Connected) / c.AllSubscribedSeconds
	}
	r.Messages.Latency = all.Summarize()
	if s := r.loadSeconds(); s > 0 {
		r.Messages.ReceivedPerSec = float64(r.Messages.Received) / s
	}

	channels := mergeChannels(groups)
	if r.Scenario.Mode == ModeBroadcast {
		for i := 0; i < r.StepsRun; i++ {
			st := r.Scenario.Steps[i]
			sf := StepFigures{Rate: st.Rate, Seconds: r.stepSeconds(i)}
			if i < len(steps) {
				sf.Received = steps[i].Received
				sf.Latency = steps[i].Latency.Summarize()
			}
			sf.ReceivedPerSec = float64(sf.Received) / sf.Seconds
			r.Steps = append(r.Steps, sf)
		}
	}
	l := &r.Loss
	if produced == nil {
		return
	}
	l.Measured = !r.Scenario.Generic() || r.Scenario.SeqPath != ""
	type lossy struct {
		name string
		lost int64
	}
	var worst []lossy
	for name, c := range channels {
		p := produced[name]
		c.Settle(p)
		for i := range p {
			if i < len(r.Steps) {
				r.Steps[i].Produced += p[i]
				r.Steps[i].Expected += c.Expected[i]
				r.Steps[i].Lost += c.Lost[i]
			}
			l.Expected += c.Expected[i]
		}
		l.Duplicates += c.Duplicates
		l.OutOfOrder += c.OutOfOrder
		if lost := c.TotalLost(); lost > 0 {
			l.Lost += lost
			worst = append(worst, lossy{name, lost})
		}
	}
	// Produced counts of channels nobody subscribed to still belong to the step totals.
	for name, p := range produced {
		if _, ok := channels[name]; ok {
			continue
		}
		for i := range p {
			if i < len(r.Steps) {
				r.Steps[i].Produced += p[i]
			}
		}
	}
	sort.Slice(worst, func(i, j int) bool { return worst[i].lost > worst[j].lost })
	for i := 0; i < len(worst) && i < 10; i++ {
		l.LossyChannel = append(l.LossyChannel, fmt.Sprintf("%s=%d", worst[i].name, worst[i].lost))
	}
}

// judge sets Loss.OK.
func (r *Result) judge() {
	l := &r.Loss
	// Nothing expected (no subscriber survived, nothing produced) proves nothing: not OK.
	l.OK = l.Measured && l.Expected > 0 && l.Lost == 0 && l.Duplicates == 0 && l.OutOfOrder == 0 &&
		r.Connections.Dropped == 0 && r.ProduceErrors == 0 && len(r.GroupErrors) == 0
	if r.Failover != nil && r.Failover.Problem() != "" {
		l.OK = false
	}
}

// LossLine is the one-line verdict printed after every broadcast run.
func (r *Result) LossLine() string {
	l := r.Loss
	if !l.Measured {
		return "LOSS not measured (no sequence numbers in received messages; set --seq-path)"
	}
	verdict := "OK"
	if !l.OK {
		verdict = "FAIL"
	}
	line := fmt.Sprintf("LOSS %s: lost %d of %d expected, duplicated %d, out of order %d, connections dropped %d, produce errors %d",
		verdict, l.Lost, l.Expected, l.Duplicates, l.OutOfOrder, r.Connections.Dropped, r.ProduceErrors)
	if r.Failover != nil {
		if p := r.Failover.Problem(); p != "" {
			line += "; " + p
		}
	}
	return line
}

// WriteTable prints the human summary.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c := r.Connections
	fmt.Fprintf(tw, "scenario\t%s %d conns, %d channels x %d subs (%s), ramp %g/s, workers %d\n",
		r.Scenario.Mode, r.Scenario.Conns, r.Scenario.Channels, r.Scenario.SubsPerConn, r.Scenario.Distribution, r.Scenario.RampRate, r.Generator.Workers)
	fmt.Fprintf(tw, "connections\tconnected %d, subscribed %d, failed %d, dropped %d, slow %d\n", c.Connected, c.Subscribed, c.Failed, c.Dropped, c.Slow)
	fmt.Fprintf(tw, "failures\t%s\n", scrape.FormatMap(c.Failures))
	fmt.Fprintf(tw, "dropped by\t%s\n", scrape.FormatMap(c.DroppedBy))
	fmt.Fprintf(tw, "handshake\t%s\n", formatSummary(c.Handshake))
	fmt.Fprintf(tw, "subscribe\t%s\n", formatSummary(c.Subscribe))
	fmt.Fprintf(tw, "all subscribed\tafter %.2fs (%.0f handshakes/s)\n", c.AllSubscribedSeconds, c.HandshakesPerSec)
	fmt.Fprintf(tw, "messages\treceived %d (%.0f/s), latency %s\n", r.Messages.Received, r.Messages.ReceivedPerSec, formatSummary(r.Messages.Latency))
	for i, s := range r.Steps {
		fmt.Fprintf(tw, "step %d\trate %g/s for %.0fs: produced %d, received %d (%.0f/s; %.0f/s wall, server %.0f/s), lost %d, latency %s\n",
			i, s.Rate, s.Seconds, s.Produced, s.Received, s.ReceivedPerSec, s.WallPerSec, s.ServerPerSec, s.Lost, formatSummary(s.Latency))
	}
	if r.StoppedEarly != "" {
		fmt.Fprintf(tw, "stopped early\t%s\n", r.StoppedEarly)
	}
	if s := r.Server; s != nil && s.Scraped {
		fmt.Fprintf(tw, "server\tconnections %.0f at peak, RSS %.1f MiB (%.1f KB/conn, %.1f KB/conn over idle)\n",
			s.Peak.Connections, s.Peak.ResidentBytes/(1<<20), s.RSSPerConnBytes/1024, s.RSSDeltaPerConnBytes/1024)
		fmt.Fprintf(tw, "server\tdelivered %.0f (%.0f/s), frames %.0f, CPU %.2fs (%.2f us/msg), rejected %s, disconnects %s\n",
			s.Delta.Delivered, s.DeliveredPerSec, s.Delta.Frames, s.Delta.CPUSeconds, s.CPUPerMessageUs,
			scrape.FormatMap(s.Delta.Rejected), scrape.FormatMap(s.Delta.Disconnects))
	} else if s != nil && len(s.Errors) > 0 {
		fmt.Fprintf(tw, "server\tmetrics not scraped: %s\n", strings.Join(s.Errors, "; "))
	}
	if f := r.Failover; f != nil {
		f.writeTable(tw)
	}
	if t := r.Throttled; t != nil {
		t.writeTable(tw)
	}
	g := r.Generator
	sat := ""
	if g.Saturated {
		sat = "  SATURATED: the client may be the bottleneck"
	}
	fmt.Fprintf(tw, "generator\tCPU %.2fs = %.0f%% of its %d cores (%.0f%% under load); with the server %.0f%% of %d host cores%s\n",
		g.CPUSeconds, g.Share*100, g.Cores, g.LoadShare*100, g.MachineShare*100, g.HostCores, sat)
	for _, e := range r.GroupErrors {
		fmt.Fprintf(tw, "error\t%s\n", e)
	}
	tw.Flush()
	if r.Scenario.Mode == ModeBroadcast {
		fmt.Fprintln(w, r.LossLine())
	}
}

func formatSummary(s latency.Summary) string {
	if s.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("n=%d p50 %.2fms p90 %.2fms p99 %.2fms p99.9 %.2fms max %.2fms", s.Count, s.P50Ms, s.P90Ms, s.P99Ms, s.P999Ms, s.MaxMs)
}

// WriteFile writes the result as indented JSON.
func (r *Result) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// writeTable prints a failover's figures in WriteTable's two columns.
func (f *FailoverFigures) writeTable(tw io.Writer) {
	fmt.Fprintf(tw, "failover\tA ended by %s %.1fs into the step; A clients %d (connections ended: %s; before A's end %d), standby clients on B %d\n",
		f.Signal, f.AtSeconds, f.Clients, scrape.FormatMap(f.Left), f.LeftEarly, f.Standby)
	fmt.Fprintf(tw, "resumes\t%d sent (%d handshake retries), draining lines %d, reconnect delay %s\n",
		f.Resumes, f.DialRetries, f.DrainingLines, formatSummary(f.ReconnectDelay))
	fmt.Fprintf(tw, "resumed\trecovered %s; not recovered %s; failed %s; unfinished %s\n",
		scrape.FormatMap(f.Recovered), scrape.FormatMap(f.NotRecovered), scrape.FormatMap(f.Failed), scrape.FormatMap(f.Unfinished))
	fmt.Fprintf(tw, "recovered after\tA's end: %s (last %.2fs)\n", formatSummary(f.RecoveredAfter), f.LastRecoveredSeconds)
	fmt.Fprintf(tw, "resume\trequest to recovered line %s; B handshake %s\n", formatSummary(f.ResumeLatency), formatSummary(f.ReconnectHandshake))
	fmt.Fprintf(tw, "replay\t%d records (servers' count; clients read %d before their recovered lines) over %.2fs = %.0f records/s; resumes under way %.3fs = %.0f records/s; gaps %d\n",
		f.Replayed, f.ReplayReceived, f.ReplayWindowSeconds, f.ReplayPerSec, f.ReplayBusySeconds, f.ReplayBusyPerSec, f.Gaps)
	fmt.Fprintf(tw, "standby latency\tbefore A's end %s\n", formatSummary(f.StandbyBefore))
	fmt.Fprintf(tw, "\tstorm (%.2fs) %s\n", f.StormSeconds, formatSummary(f.StandbyStorm))
	fmt.Fprintf(tw, "\tafter %s\n", formatSummary(f.StandbyAfter))
}
