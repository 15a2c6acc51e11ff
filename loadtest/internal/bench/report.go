package bench

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
	"github.com/adred-codev/ws_poc/loadtest/internal/rusage"
)

// Row is the figures of one run that the report tables show.
type Row struct {
	Variant  string `json:"variant"`
	Scenario string `json:"scenario"`
	Kind     string `json:"kind"`
	// Problem says why the run failed the bench ("" when it passed).
	Problem string `json:"problem,omitempty"`
	// MsgsPerSec is what the clients received per second (fan-out: in the highest
	// sustained step); ServerMsgsPerSec is ws_messages_delivered_total over the same time.
	MsgsPerSec       float64 `json:"msgs_per_sec"`
	ServerMsgsPerSec float64 `json:"server_msgs_per_sec"`
	// Rate is the records/s published (fan-out: of the highest sustained step).
	Rate          float64 `json:"rate"`
	SustainedStep int     `json:"sustained_step"`
	// PeakMsgsPerSec is the highest per-step delivery rate (server-counted, else the
	// clients' wall-clock rate), overload included; PeakStep is its step.
	PeakMsgsPerSec float64 `json:"peak_msgs_per_sec"`
	PeakStep       int     `json:"peak_step"`
	PeakP99        float64 `json:"peak_p99_ms"`
	// Note says what a run did not reach without failing the bench (e.g. no sustained step).
	Note                string  `json:"note,omitempty"`
	P50, P90, P99, P999 float64 `json:"-"`
	Max                 float64 `json:"-"`
	Lost, Dup, OOO      int64   `json:"-"`
	Subscribed          int64   `json:"subscribed"`
	Failed              int64   `json:"failed"`
	Dropped             int64   `json:"dropped"`
	PeakConns           float64 `json:"peak_conns"`
	RSSPerConnKB        float64 `json:"rss_per_conn_kb"`
	PeakRSSMB           float64 `json:"peak_rss_mb"`
	// MaxRSSPerConnKB is the server's true peak RSS (the kernel's high-water mark, from its
	// start until the clients have gone, their disconnect included) over the idle process,
	// per connection. RSSPerConnKB is one sample, taken once every connection was
	// subscribed; both move with where the garbage collector's cycles fall.
	MaxRSSPerConnKB float64 `json:"max_rss_per_conn_kb,omitempty"`
	// HistoryMB is the in-memory history the server held (ws_history_bytes, wire bytes of
	// the records kept for resumes) at its largest scrape.
	HistoryMB            float64 `json:"history_mb,omitempty"`
	HandshakesPerSec     float64 `json:"handshakes_per_sec"`
	AllSubscribedSeconds float64 `json:"all_subscribed_seconds"`
	SlowClients          int64   `json:"slow_clients"`
	SlowCut              float64 `json:"slow_cut"`
	P99VsReference       float64 `json:"p99_vs_reference"`
	CPUPerMsgUs          float64 `json:"cpu_per_msg_us"`
	// MsgsPerFrame is messages per WebSocket frame over the run and CPUPerFrameUs the
	// server's CPU per frame: with batching on a frame is one write syscall, so a server
	// that is behind (bigger batches) spends less per message for the same per-write cost.
	MsgsPerFrame float64 `json:"msgs_per_frame"`
	// LoadCPUPerMsgUs is the server's CPU per message over the load steps only (no connect
	// phase, no drain): the handshakes of 10K connections are not message delivery.
	LoadCPUPerMsgUs     float64 `json:"load_cpu_per_msg_us"`
	CPUPerFrameUs       float64 `json:"cpu_per_frame_us"`
	ProjectedMsgsPerSec float64 `json:"projected_msgs_per_sec"`
	GeneratorShare      float64 `json:"generator_share"`
	MachineShare        float64 `json:"machine_share"`
	Saturated           bool    `json:"saturated"`
	// Mobile are a mobile run's throttled clients' figures (nil for other kinds).
	Mobile *MobileRow `json:"mobile,omitempty"`
}

type report struct {
	file    *File
	records []*record
	smoke   bool
	date    string
	// floor is the write-floor probe's record; nil when the run had none.
	floor   *floorRecord
	SVG     string
	JSONDir string
}

func buildReport(f *File, records []*record, smoke bool, date string) *report {
	rep := &report{file: f, records: records, smoke: smoke, date: date}
	for _, r := range records {
		r.Row = row(r)
	}
	// Slow-consumer runs compare their healthy clients' p99 with the reference scenario's
	// run of the same round.
	for _, r := range records {
		if r.Entry.CompareTo == "" {
			continue
		}
		if ref := rep.find(r.Variant.Name, r.Entry.CompareTo, r.Repeat); ref != nil && ref.Row.P99 > 0 {
			r.Row.P99VsReference = r.Row.P99 / ref.Row.P99
		}
	}
	return rep
}

// find returns the repeat-th run of scenario against variant (repeat 0 or 1: the first).
func (rep *report) find(variant, scenario string, repeat int) *record {
	for _, r := range rep.records {
		if r.Variant.Name == variant && r.Entry.Name == scenario && max(r.Repeat, 1) == max(repeat, 1) {
			return r
		}
	}
	return nil
}

// runs returns every run of scenario against variant, in order.
func (rep *report) runs(variant, scenario string) []*record {
	var out []*record
	for _, r := range rep.records {
		if r.Variant.Name == variant && r.Entry.Name == scenario {
			out = append(out, r)
		}
	}
	return out
}

// repeats is the most runs any scenario had against a variant.
func (rep *report) repeats() int {
	n := 1
	for _, r := range rep.records {
		n = max(n, r.Repeat)
	}
	return n
}

// shown is one run per variant and scenario, for the chart: the run with the median CPU
// per message (the first when there is one run).
func (rep *report) shown() []*record {
	var out []*record
	seen := map[string]bool{}
	for _, r := range rep.records {
		key := r.Variant.Name + "/" + r.Entry.Name
		if seen[key] {
			continue
		}
		seen[key] = true
		runs := slices.Clone(rep.runs(r.Variant.Name, r.Entry.Name))
		slices.SortStableFunc(runs, func(a, b *record) int { return cmp.Compare(a.Row.CPUPerMsgUs, b.Row.CPUPerMsgUs) })
		out = append(out, runs[(len(runs)-1)/2])
	}
	return out
}

// median of the figure f over runs (the mean of the middle two for an even count); 0
// when a run lacks the figure, so that the ratio shows "-" rather than a partial median.
func median(runs []*record, f func(Row) float64) float64 {
	var v []float64
	for _, r := range runs {
		x := f(r.Row)
		if x == 0 {
			return 0
		}
		v = append(v, x)
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

func row(r *record) Row {
	w := Row{Variant: r.Variant.Name, Scenario: r.Entry.Name, Kind: r.Entry.Kind, SustainedStep: -1}
	res := r.Result
	if res == nil {
		w.Problem = "no result: " + r.Error
		return w
	}
	c := res.Connections
	w.Subscribed, w.Failed, w.Dropped, w.SlowClients = c.Subscribed, c.Failed, c.Dropped, c.Slow
	w.HandshakesPerSec, w.AllSubscribedSeconds = c.HandshakesPerSec, c.AllSubscribedSeconds
	w.Lost, w.Dup, w.OOO = res.Loss.Lost, res.Loss.Duplicates, res.Loss.OutOfOrder
	lat := res.Messages.Latency
	w.MsgsPerSec = res.Messages.ReceivedPerSec
	if len(res.Steps) > 0 {
		// Per wall-clock second while the step ran: under overload the backlog delivered
		// during the drain does not count as throughput.
		w.Rate, w.MsgsPerSec = res.Steps[0].Rate, res.Steps[0].WallPerSec
	}
	if s := res.Server; s != nil && s.Scraped {
		w.ServerMsgsPerSec = s.DeliveredPerSec
		if len(res.Steps) > 0 && res.Steps[0].ServerPerSec > 0 {
			w.ServerMsgsPerSec = res.Steps[0].ServerPerSec
		}
		w.PeakConns = s.Peak.Connections
		w.RSSPerConnKB = s.RSSDeltaPerConnBytes / 1024
		w.PeakRSSMB = s.Peak.ResidentBytes / (1 << 20)
		w.HistoryMB = max(s.Peak.HistoryBytes, s.After.HistoryBytes) / (1 << 20)
		if n := s.Peak.Connections - s.Before.Connections; r.ServerMaxRSS > 0 && n > 0 {
			w.MaxRSSPerConnKB = (r.ServerMaxRSS - s.Before.ResidentBytes) / n / 1024
		}
		w.SlowCut = s.Delta.Disconnects["slow"] + s.Delta.Disconnects["write_timeout"] + s.Delta.Disconnects["ping_timeout"]
		w.CPUPerMsgUs = s.CPUPerMessageUs
		var cpu, msgs float64
		for _, st := range res.Steps {
			n := st.ServerPerSec * st.Seconds
			cpu, msgs = cpu+st.ServerCPUUs*n, msgs+n
		}
		if msgs > 0 {
			w.LoadCPUPerMsgUs = cpu / msgs
		}
		if s.Delta.Frames > 0 {
			w.MsgsPerFrame = s.Delta.Delivered / s.Delta.Frames
			w.CPUPerFrameUs = s.Delta.CPUSeconds / s.Delta.Frames * 1e6
		}
		if w.CPUPerMsgUs > 0 {
			w.ProjectedMsgsPerSec = float64(max(r.Variant.Cores, 1)) * 1e6 / w.CPUPerMsgUs
		}
	} else {
		w.Problem = "server metrics not scraped"
	}
	g := res.Generator
	w.GeneratorShare, w.MachineShare, w.Saturated = g.LoadShare, g.MachineShare, g.Saturated

	if r.Entry.Kind == KindFanout {
		limit := r.Entry.MaxP99Ms
		if limit == 0 {
			limit = 100
		}
		for i, s := range res.Steps {
			if s.Latency.Count == 0 || s.Latency.P99Ms >= limit || s.Lost > 0 || s.Dropped > 0 {
				break
			}
			w.SustainedStep = i
		}
		w.PeakStep = -1
		for i, s := range res.Steps {
			rate := s.ServerPerSec
			if rate == 0 {
				rate = s.WallPerSec
			}
			if rate > w.PeakMsgsPerSec {
				w.PeakMsgsPerSec, w.PeakStep, w.PeakP99 = rate, i, s.Latency.P99Ms
			}
		}
		switch {
		case len(res.Steps) == 0 || res.Steps[0].Latency.Count == 0:
			w.Problem = "no figures: the first step delivered nothing"
			return w
		case res.Steps[0].Lost > 0:
			// Loss at the gentlest rate is loss, not overload.
			w.Problem = fmt.Sprintf("lost %d messages in step 0", res.Steps[0].Lost)
			return w
		case w.SustainedStep < 0:
			w.Note = fmt.Sprintf("no step sustained p99 < %gms without loss (step 0 p99 %.0fms)", limit, res.Steps[0].Latency.P99Ms)
			w.MsgsPerSec, w.ServerMsgsPerSec, w.Rate, lat = 0, 0, 0, res.Steps[0].Latency
		default:
			s := res.Steps[w.SustainedStep]
			w.Rate, w.MsgsPerSec, w.ServerMsgsPerSec, lat = s.Rate, s.WallPerSec, s.ServerPerSec, s.Latency
		}
	} else if !res.Loss.OK {
		w.Problem = res.LossLine()
	}
	if r.Entry.Kind == KindMobile {
		mobileRow(&w, r)
	}
	if r.Entry.Kind == KindFailover {
		// B's connections per RSS mean nothing here: before the failover it holds only the
		// standby clients. The failover table gives B's RSS.
		w.RSSPerConnKB, w.MaxRSSPerConnKB = 0, 0
		if res.Failover == nil && w.Problem == "" {
			w.Problem = "no failover figures"
		}
	}
	w.P50, w.P90, w.P99, w.P999, w.Max = lat.P50Ms, lat.P90Ms, lat.P99Ms, lat.P999Ms, lat.MaxMs
	if w.Problem == "" && (c.Subscribed == 0 || (res.Scenario.Mode == load.ModeBroadcast && res.Messages.Received == 0)) {
		w.Problem = "no figures: nothing subscribed or received"
	}
	if w.Problem == "" && r.Error != "" {
		w.Problem = r.Error
	}
	return w
}

// check fails the bench when a run failed, lost messages or produced no figures.
func (rep *report) check() error {
	var errs []error
	for _, r := range rep.records {
		if r.Row.Problem != "" {
			errs = append(errs, fmt.Errorf("%s/%s: %s", r.Variant.Name, r.Entry.Name, r.Row.Problem))
		}
	}
	if len(rep.records) == 0 {
		errs = append(errs, errors.New("no scenario ran"))
	}
	if rep.floor != nil && rep.floor.Error != "" {
		errs = append(errs, fmt.Errorf("floor: %s", rep.floor.Error))
	}
	return errors.Join(errs...)
}

func (rep *report) markdown() string {
	var b strings.Builder
	title := "Benchmark " + rep.date
	if rep.smoke {
		title += " (smoke: tiny sizes, figures meaningless)"
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "Machine: %s. Generated by `loadtest bench` from `bench/scenarios.json`; every run's JSON (figures and the exact scenario) is in `%s/`.\n\n", machine(), rep.JSONDir)
	for _, n := range rep.file.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n")
	b.WriteString(floorSection(rep.floor))
	b.WriteString("## Results\n\n")
	b.WriteString(rep.markdownTable())
	if t := rep.failoverTable(); t != "" {
		b.WriteString("\n## Failover\n\n")
		b.WriteString(failoverIntro)
		b.WriteString(t)
	}
	if t := rep.mobileTable(); t != "" {
		b.WriteString("\n## Mobile clients\n\n")
		b.WriteString(mobileIntro)
		b.WriteString(t)
	}
	b.WriteString("\n## multi / single\n\n")
	b.WriteString(rep.ratioTable("multi", "single"))
	for _, v := range rep.file.Variants {
		switch {
		case v.Against == "":
		case v.LoadAuth != nil:
			// The variant turns a feature on over its Against: its tables are Name / Against.
			b.WriteString(rep.authSection(v))
			fmt.Fprintf(&b, "\nEvery figure, %s / %s:\n\n", v.Name, v.Against)
			b.WriteString(rep.ratioTable(v.Name, v.Against))
		default:
			fmt.Fprintf(&b, "\n## %s / %s\n\n", v.Against, v.Name)
			b.WriteString(rep.ratioTable(v.Against, v.Name))
			b.WriteString(rep.historyLine(v.Against, v.Name))
		}
	}
	b.WriteString("\n## Scenario details\n\n")
	rep.details(&b)
	if rep.SVG != "" {
		fmt.Fprintf(&b, "\n![latency percentiles and throughput per variant](%s)\n", rep.SVG)
	}
	return b.String()
}

func (rep *report) markdownTable() string {
	var b strings.Builder
	b.WriteString("| variant | scenario | records/s | client msgs/s | server msgs/s | p50 ms | p99 ms | p99.9 ms | max ms | lost | subscribed | failed | RSS KB/conn | peak RSS KB/conn | handshakes/s | CPU µs/msg | msgs/frame | projected msgs/s | peak msgs/s (step p99 ms) | generator CPU under load | status |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	many := rep.repeats() > 1
	for _, r := range rep.records {
		w := r.Row
		name := w.Variant
		if many {
			name = fmt.Sprintf("%s #%d", w.Variant, max(r.Repeat, 1))
		}
		status := "ok"
		if w.Problem != "" {
			status = "FAIL: " + w.Problem
		}
		if w.Note != "" {
			status += "; " + w.Note
		}
		if w.Saturated {
			status += " (generator saturated)"
		}
		peak := "-"
		if w.PeakStep >= 0 && w.Kind == KindFanout {
			peak = fmt.Sprintf("%s (%.0f)", num(w.PeakMsgsPerSec), w.PeakP99)
		}
		maxRSS := "-"
		if w.MaxRSSPerConnKB > 0 {
			maxRSS = fmt.Sprintf("%.1f", w.MaxRSSPerConnKB)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %d | %d | %d | %.1f | %s | %s | %.2f | %.2f | %s | %s | %.0f%% | %s |\n",
			name, w.Scenario, num(w.Rate), num(w.MsgsPerSec), num(w.ServerMsgsPerSec), w.P50, w.P99, w.P999, w.Max,
			w.Lost, w.Subscribed, w.Failed, w.RSSPerConnKB, maxRSS, num(w.HandshakesPerSec), w.CPUPerMsgUs, w.MsgsPerFrame, num(w.ProjectedMsgsPerSec),
			peak, w.GeneratorShare*100, status)
	}
	return b.String()
}

// scenarios are the scenarios that ran, each once, in the order of the runs.
func (rep *report) scenarios() []string {
	var out []string
	for _, r := range rep.records {
		if !slices.Contains(out, r.Entry.Name) {
			out = append(out, r.Entry.Name)
		}
	}
	return out
}

// ratioTable compares variant num with variant den, scenario by scenario (medians).
func (rep *report) ratioTable(num, den string) string {
	var b strings.Builder
	if n := rep.repeats(); n > 1 {
		fmt.Fprintf(&b, "Medians of %d runs per variant (variants interleaved, each first in turn); CPU per message also gives the lowest and highest ratio of the runs paired by round.\n\n", n)
	}
	b.WriteString("| scenario | client msgs/s | server msgs/s | peak msgs/s | CPU per msg (run / load steps) | msgs per frame | CPU per frame | RSS per conn | peak RSS per conn | p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range rep.scenarios() {
		s, m := rep.runs(den, name), rep.runs(num, name)
		if len(s) == 0 || len(m) == 0 {
			continue
		}
		med := func(f func(Row) float64) string { return ratio(median(m, f), median(s, f)) }
		cpu := med(func(w Row) float64 { return w.CPUPerMsgUs })
		if lo, hi, ok := rep.pairRange(num, den, name, func(w Row) float64 { return w.CPUPerMsgUs }); ok {
			cpu += fmt.Sprintf(" (%.2f-%.2f)", lo, hi)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name,
			med(func(w Row) float64 { return w.MsgsPerSec }), med(func(w Row) float64 { return w.ServerMsgsPerSec }),
			med(func(w Row) float64 { return w.PeakMsgsPerSec }),
			cpu+" / "+med(func(w Row) float64 { return w.LoadCPUPerMsgUs }), med(func(w Row) float64 { return w.MsgsPerFrame }),
			med(func(w Row) float64 { return w.CPUPerFrameUs }), med(func(w Row) float64 { return w.RSSPerConnKB }),
			med(func(w Row) float64 { return w.MaxRSSPerConnKB }), med(func(w Row) float64 { return w.P99 }))
	}
	return b.String()
}

// historyLine says how much of num's memory was its history in each scenario, beside the
// peak RSS difference from den: the history's own cost, which the per-connection figures
// above spread over the connections.
func (rep *report) historyLine(num, den string) string {
	var b strings.Builder
	b.WriteString("\n| scenario | history held (MB, wire bytes) | peak RSS " + num + " − " + den + " (MB) |\n|---|---:|---:|\n")
	for _, name := range rep.scenarios() {
		n, d := rep.runs(num, name), rep.runs(den, name)
		if len(n) == 0 || len(d) == 0 {
			continue
		}
		peak := func(w Row) float64 { return w.PeakRSSMB }
		fmt.Fprintf(&b, "| %s | %.1f | %+.1f |\n", name, median(n, func(w Row) float64 { return w.HistoryMB }), median(n, peak)-median(d, peak))
	}
	return b.String()
}

// pairRange is the lowest and highest num/den ratio of figure f over the runs of scenario
// paired by round; ok is false with fewer than two pairs.
func (rep *report) pairRange(num, den, scenario string, f func(Row) float64) (lo, hi float64, ok bool) {
	n := 0
	for k := 1; k <= rep.repeats(); k++ {
		s, m := rep.find(den, scenario, k), rep.find(num, scenario, k)
		if s == nil || m == nil || f(s.Row) == 0 || f(m.Row) == 0 {
			continue
		}
		x := f(m.Row) / f(s.Row)
		if n == 0 || x < lo {
			lo = x
		}
		if n == 0 || x > hi {
			hi = x
		}
		n++
	}
	return lo, hi, n >= 2
}

func (rep *report) details(b *strings.Builder) {
	for _, r := range rep.records {
		w, res := r.Row, r.Result
		run := ""
		if n := rep.repeats(); n > 1 {
			run = fmt.Sprintf(" (run %d of %d)", max(r.Repeat, 1), n)
		}
		fmt.Fprintf(b, "### %s / %s%s\n\n%s\n\n", r.Variant.Name, r.Entry.Name, run, r.Entry.Description)
		if res == nil {
			fmt.Fprintf(b, "No result: %s\n\n", r.Error)
			continue
		}
		fmt.Fprintf(b, "- connections: %d subscribed of %d, failed %d (%s), dropped %d, all subscribed after %.2fs (%s handshakes/s), handshake p99 %.1fms\n",
			res.Connections.Subscribed, res.Connections.Target, res.Connections.Failed, counts(res.Connections.Failures),
			res.Connections.Dropped, res.Connections.AllSubscribedSeconds, num(res.Connections.HandshakesPerSec), res.Connections.Handshake.P99Ms)
		if s := res.Server; s != nil && s.Scraped {
			peak := ""
			if r.ServerMaxRSS > 0 && r.Entry.Kind != KindFailover { // a failover gives B's peak RSS on its own line
				peak = fmt.Sprintf("; peak RSS %.1f MiB (%.1f KB/conn)", r.ServerMaxRSS/(1<<20), w.MaxRSSPerConnKB)
			}
			fmt.Fprintf(b, "- server: peak %.0f connections, RSS %.1f MiB (%.1f KB/conn over idle)%s, CPU %.2fs for %.0f messages (%.2f µs/msg) in %.0f frames (%.2f msgs/frame, %.2f µs/frame), disconnects %s, rejected %s\n",
				s.Peak.Connections, s.Peak.ResidentBytes/(1<<20), s.RSSDeltaPerConnBytes/1024, peak, s.Delta.CPUSeconds, s.Delta.Delivered,
				s.CPUPerMessageUs, s.Delta.Frames, w.MsgsPerFrame, w.CPUPerFrameUs, fmtMap(s.Delta.Disconnects), fmtMap(s.Delta.Rejected))
		}
		fmt.Fprintf(b, "- generator: %.1fs CPU = %.0f%% of its %d core(s) over the run, %.0f%% while the load ran; generator + server %.0f%% of %d host cores%s\n",
			res.Generator.CPUSeconds, res.Generator.Share*100, res.Generator.Cores, res.Generator.LoadShare*100,
			res.Generator.MachineShare*100, res.Generator.HostCores, satNote(res.Generator.Saturated))
		if res.Scenario.Mode == load.ModeBroadcast {
			fmt.Fprintf(b, "- %s\n", res.LossLine())
		}
		switch r.Entry.Kind {
		case KindFanout:
			b.WriteString("\n| step | records/s | produced | offered msgs/s | client msgs/s (wall) | server msgs/s | server µs/msg | p50 ms | p99 ms | max ms | lost | dropped |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			for i, s := range res.Steps {
				mark := ""
				if i == w.SustainedStep {
					mark = " (highest sustained)"
				}
				if i == w.PeakStep {
					mark += " (peak)"
				}
				fmt.Fprintf(b, "| %d%s | %s | %d | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %d | %d |\n", i, mark, num(s.Rate), s.Produced,
					num(s.ReceivedPerSec), num(s.WallPerSec), num(s.ServerPerSec), s.ServerCPUUs, s.Latency.P50Ms, s.Latency.P99Ms, s.Latency.MaxMs, s.Lost, s.Dropped)
			}
			if res.StoppedEarly != "" {
				fmt.Fprintf(b, "\nStepping stopped: %s.\n", res.StoppedEarly)
			}
		case KindFailover:
			failoverDetails(b, r)
		case KindMobile:
			mobileDetails(b, r)
		case KindSlow:
			fmt.Fprintf(b, "- slow consumers: %d of %d stopped reading; server cut %.0f (slow, write_timeout, ping_timeout); healthy p99 %.2fms = %.2fx %s's\n",
				w.SlowClients, res.Connections.Target, w.SlowCut, w.P99, w.P99VsReference, r.Entry.CompareTo)
		}
		b.WriteString("\n")
	}
}

func satNote(s bool) string {
	if s {
		return " (SATURATED: the generator used its cores fully; the client may be the bottleneck)"
	}
	return ""
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func num(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fK", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func fmtMap(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, v))
	}
	return strings.Join(parts, " ")
}

// machine describes the host: CPU model, cores, memory, kernel, Go version.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if _, v, ok := strings.Cut(l, ":"); ok {
					model = strings.TrimSpace(v)
				}
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d × %s%s%s, %s; the bench process may use %d of the cores", rusage.HostCores(), model, mem, kernel, runtime.Version(), runtime.NumCPU())
}
