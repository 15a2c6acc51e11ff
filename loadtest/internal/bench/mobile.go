package bench

import (
	"fmt"
	"strings"
)

// MobileRow is what a mobile run's throttled clients came to (load.ThrottledFigures), as
// the report shows it. Ages are milliseconds.
type MobileRow struct {
	Clients     int64   `json:"clients"`
	Subscribed  int64   `json:"subscribed"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	ReadPerSec  float64 `json:"read_per_sec"`
	Channels    int     `json:"channels"`
	Conflate    string  `json:"conflate,omitempty"`
	// Cut is how many throttled clients saw their connection end during the run, by
	// cause (CutBy); ServerCut the server's count of clients it cut (slow, write_timeout,
	// ping_timeout) up to the end of the drain. A client sees its cut only once it has
	// read what its kernel held, which may be after the run ended: the server's count is
	// the complete one (a healthy client cut would fail the run's loss line anyway).
	Cut            int64            `json:"cut"`
	CutBy          map[string]int64 `json:"cut_by,omitempty"`
	ServerCut      int64            `json:"server_cut"`
	Messages       int64            `json:"messages"`
	ConflatedLines int64            `json:"conflated_lines"`
	Skipped        int64            `json:"skipped"`
	Unannounced    int64            `json:"unannounced"`
	AgeP50         float64          `json:"age_p50_ms"`
	AgeP99         float64          `json:"age_p99_ms"`
	AgeMax         float64          `json:"age_max_ms"`
	AgeSamples     int64            `json:"age_samples"`
	BehindP50      float64          `json:"behind_p50_ms"`
	BehindP99      float64          `json:"behind_p99_ms"`
	BehindMax      float64          `json:"behind_max_ms"`
}

// mobileRow fills w.Mobile from a mobile run's throttled figures and sets w.Problem when
// the run failed as a mobile run: a throttled client that never subscribed, a record
// missing from a throttled client's channel without a conflated line announcing it, and,
// with conflation, a throttled client cut or no age sampled. Without conflation the
// throttled clients are the contrast: their cuts are a figure, not a failure.
func mobileRow(w *Row, r *record) {
	t := r.Result.Throttled
	if t == nil {
		if w.Problem == "" {
			w.Problem = "no throttled clients' figures"
		}
		return
	}
	w.Mobile = &MobileRow{
		Clients: t.Clients, Subscribed: t.Subscribed, BytesPerSec: t.BytesPerSec, ReadPerSec: t.ReadPerSec, Channels: t.Channels, Conflate: t.Conflate,
		Cut: t.Cut, CutBy: t.CutBy, ServerCut: int64(w.SlowCut), Messages: t.Messages, ConflatedLines: t.ConflatedLines, Skipped: t.Skipped, Unannounced: t.Unannounced,
		AgeP50: t.ValueAge.P50Ms, AgeP99: t.ValueAge.P99Ms, AgeMax: t.ValueAge.MaxMs, AgeSamples: t.ValueAge.Count,
		BehindP50: t.Behind.P50Ms, BehindP99: t.Behind.P99Ms, BehindMax: t.Behind.MaxMs,
	}
	if w.Problem != "" {
		return
	}
	switch {
	case t.Clients == 0 || t.Subscribed < t.Clients:
		w.Problem = fmt.Sprintf("%d of %d throttled clients subscribed", t.Subscribed, t.Clients)
	case t.Unannounced > 0:
		w.Problem = fmt.Sprintf("%d records missing from throttled clients' channels with no conflated line announcing them", t.Unannounced)
	case t.Conflate != "" && w.Mobile.cut() > 0:
		w.Problem = fmt.Sprintf("throttled clients cut with conflation: %d seen by the clients (%s), %d by the server", t.Cut, counts(t.CutBy), w.Mobile.ServerCut)
	case t.Conflate != "" && t.ValueAge.Count == 0:
		w.Problem = "no age of a throttled client's latest value sampled while publishing"
	}
}

// cut is how many throttled clients were cut: the clients' count or the server's,
// whichever is higher.
func (m *MobileRow) cut() int64 {
	return max(m.Cut, m.ServerCut)
}

// mobileVerdict judges a mobile run against its bounds: with conflation, none of the
// throttled clients cut and the healthy clients' p99 within maxRatio of the reference
// scenario's in the same round; without, the contrast (cut, or how far behind).
func mobileVerdict(w Row, maxRatio float64) string {
	m := w.Mobile
	if m == nil {
		return "-"
	}
	if m.Conflate == "" {
		if m.cut() > 0 {
			return fmt.Sprintf("contrast: %d of %d cut, behind up to %.1fs", m.cut(), m.Clients, m.BehindMax/1000)
		}
		return fmt.Sprintf("contrast: none cut, behind up to %.1fs", m.BehindMax/1000)
	}
	var no []string
	if m.cut() > 0 {
		no = append(no, fmt.Sprintf("%d cut", m.cut()))
	}
	switch {
	case maxRatio <= 0:
	case w.P99VsReference == 0:
		no = append(no, "no reference p99")
	case w.P99VsReference > maxRatio:
		no = append(no, fmt.Sprintf("healthy p99 %.2fx > %.2gx", w.P99VsReference, maxRatio))
	}
	if len(no) > 0 {
		return "no: " + strings.Join(no, ", ")
	}
	if maxRatio > 0 {
		return fmt.Sprintf("yes: none cut, healthy p99 %.2fx <= %.2gx", w.P99VsReference, maxRatio)
	}
	return "yes: none cut"
}

// mobileIntro explains the mobile table's columns.
const mobileIntro = `The market load with a fraction of the clients on a throttled link: each reads its socket at most at the link's rate (a token bucket around its reads, a 4 KB receive buffer so the kernel does not absorb the backlog) and subscribes to the hottest channels, with "conflate":"behind" (mobile) or without (mobile-plain, the contrast). Their messages are counted apart: the healthy clients' p99 is the other clients' only, against the reference scenario's p99 in the same round. Latest value age: every 250 ms while the producer published, per throttled client and subscribed channel (once it had delivered), now minus the sent_ns of the newest message read on it. Behind: per throttled client, now minus the sent_ns of the last message read. Unannounced: records missing from a throttled client's channel sequence that no conflated line announced (must be 0).

`

// mobileTable is the report's mobile-clients table: one row per mobile run.
func (rep *report) mobileTable() string {
	var b strings.Builder
	many := rep.repeats() > 1
	for _, r := range rep.records {
		if r.Entry.Kind != KindMobile {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("| variant | scenario | throttled clients (link B/s, read B/s, hottest channels) | conflate | cut: seen / server | messages / conflated lines / skipped | unannounced | latest value age p50 / p99 / max ms | behind p50 / p99 / max ms | healthy p99 ms | vs reference p99 | verdict | status |\n")
			b.WriteString("|---|---|---|---|---|---|---:|---|---|---:|---|---|---|\n")
		}
		w := r.Row
		name := w.Variant
		if many {
			name = fmt.Sprintf("%s #%d", name, max(r.Repeat, 1))
		}
		status := "ok"
		if w.Problem != "" {
			status = "FAIL: " + w.Problem
		}
		m := w.Mobile
		if m == nil {
			fmt.Fprintf(&b, "| %s | %s | - | - | - | - | - | - | - | - | - | - | %s |\n", name, r.Entry.Name, status)
			continue
		}
		cut := fmt.Sprintf("%d / %d", m.Cut, m.ServerCut)
		if m.Cut > 0 {
			cut += " (" + counts(m.CutBy) + ")"
		}
		ref := "-"
		if w.P99VsReference > 0 {
			ref = fmt.Sprintf("%.2fx %s", w.P99VsReference, r.Entry.CompareTo)
		}
		fmt.Fprintf(&b, "| %s | %s | %d (%.0f, %.0f, %d) | %s | %s | %d / %d / %d | %d | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.2f | %s | %s | %s |\n",
			name, r.Entry.Name, m.Clients, m.BytesPerSec, m.ReadPerSec, m.Channels, orDash(m.Conflate), cut, m.Messages, m.ConflatedLines, m.Skipped, m.Unannounced,
			m.AgeP50, m.AgeP99, m.AgeMax, m.BehindP50, m.BehindP99, m.BehindMax, w.P99, ref, mobileVerdict(w, r.Entry.MaxP99Ratio), status)
	}
	if many && b.Len() > 0 {
		b.WriteString(rep.mobileRounds())
	}
	return b.String()
}

// mobileRounds is the judgement over every round of each conflating mobile scenario: one
// round's p99 on this host moves by about 20%, so the healthy clients' p99 over the
// reference's is judged by its median over the rounds, and none of the throttled clients
// may be cut in any round.
func (rep *report) mobileRounds() string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, r := range rep.records {
		key := r.Variant.Name + "/" + r.Entry.Name
		if r.Entry.Kind != KindMobile || seen[key] || r.Row.Mobile == nil || r.Row.Mobile.Conflate == "" {
			continue
		}
		seen[key] = true
		if b.Len() == 0 {
			b.WriteString("\nOver the rounds: the healthy clients' p99 over the reference's, per round and its median, and the throttled clients cut in any round.\n\n")
			b.WriteString("| variant | scenario | rounds | cut | healthy p99 vs reference, per round | median | verdict |\n|---|---|---:|---:|---|---:|---|\n")
		}
		runs := rep.runs(r.Variant.Name, r.Entry.Name)
		var cut int64
		var ratios []string
		for _, x := range runs {
			if x.Row.Mobile != nil {
				cut += x.Row.Mobile.cut()
			}
			ratios = append(ratios, fmt.Sprintf("%.2fx", x.Row.P99VsReference))
		}
		med := median(runs, func(w Row) float64 { return w.P99VsReference })
		verdict := "yes: none cut"
		switch bound := r.Entry.MaxP99Ratio; {
		case cut > 0:
			verdict = fmt.Sprintf("no: %d cut", cut)
		case bound > 0 && med == 0:
			verdict = "no: a round without a reference p99"
		case bound > 0 && med > bound:
			verdict = fmt.Sprintf("no: median healthy p99 %.2fx > %.2gx", med, bound)
		case bound > 0:
			verdict = fmt.Sprintf("yes: none cut, median healthy p99 %.2fx <= %.2gx", med, bound)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %.2fx | %s |\n", r.Variant.Name, r.Entry.Name, len(runs), cut, strings.Join(ratios, ", "), med, verdict)
	}
	return b.String()
}

// mobileDetails is a mobile run's lines of the scenario details.
func mobileDetails(b *strings.Builder, r *record) {
	w := r.Row
	m := w.Mobile
	if m == nil {
		b.WriteString("- throttled clients: no figures\n")
		return
	}
	t := r.Result.Throttled
	fmt.Fprintf(b, "- throttled clients: %d (%d subscribed) reading at most %.0f B/s (read %.0f B/s while reading) on the %d hottest channels, conflate %s; cut %d as they saw it (%s), %d by the server's count; read %d messages (%d bytes), %d conflated lines announcing %d skipped records, %d missing unannounced; latency p50 %.0fms p99 %.0fms max %.0fms\n",
		m.Clients, m.Subscribed, m.BytesPerSec, m.ReadPerSec, m.Channels, orDash(m.Conflate), m.Cut, counts(m.CutBy), m.ServerCut, m.Messages, t.Bytes,
		m.ConflatedLines, m.Skipped, m.Unannounced, t.Latency.P50Ms, t.Latency.P99Ms, t.Latency.MaxMs)
	fmt.Fprintf(b, "- latest value age (%d samples): p50 %.0fms p99 %.0fms max %.0fms; behind: p50 %.0fms p99 %.0fms max %.0fms\n",
		m.AgeSamples, m.AgeP50, m.AgeP99, m.AgeMax, m.BehindP50, m.BehindP99, m.BehindMax)
	fmt.Fprintf(b, "- healthy clients: p99 %.2fms = %.2fx %s's; %s\n", w.P99, w.P99VsReference, r.Entry.CompareTo, mobileVerdict(w, r.Entry.MaxP99Ratio))
}
