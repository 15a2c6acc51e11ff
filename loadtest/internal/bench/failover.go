package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// failoverRecord is what the bench noted of a failover run's two instances of the variant.
type failoverRecord struct {
	// Signal is what ended A (load.SignalKill or load.SignalTerm).
	Signal string `json:"signal"`
	// APeakRSS is A's peak RSS (VmHWM) just before it was ended, in bytes.
	APeakRSS float64 `json:"a_peak_rss,omitempty"`
	// AExitSeconds is from the signal to A's exit; AExit how it exited.
	AExitSeconds float64 `json:"a_exit_seconds,omitempty"`
	AExit        string  `json:"a_exit,omitempty"`
	// BRSSBefore is B's RSS scraped once every client was subscribed (B holding only its
	// already-connected clients); BPeakRSS its peak RSS over the run (VmHWM, the clients'
	// disconnect at the end included); BRSSAfter its RSS scraped at the end of the load,
	// every client on it. Bytes.
	BRSSBefore float64 `json:"b_rss_before,omitempty"`
	BPeakRSS   float64 `json:"b_peak_rss,omitempty"`
	BRSSAfter  float64 `json:"b_rss_after,omitempty"`
}

// aExitGrace is how long after its signal A has to exit beyond its WS_SHUTDOWN_TIMEOUT.
const aExitGrace = 5 * time.Second

// runFailover starts two instances of variant v on the same broker, both pinned to the
// variant's CPUs: A, where the scenario's clients connect, and B, where its standby
// clients do. The load ends A with the scenario's signal mid-step; A's clients resume on
// B. It returns the result, B's peak RSS and what it noted of A and B.
func (b *bencher) runFailover(ctx context.Context, e Entry, v Variant, n int) (*load.Result, float64, *failoverRecord, error) {
	sc, err := b.scenario(e)
	if err != nil {
		return nil, 0, nil, err
	}
	if sc.Failover == nil {
		return nil, 0, nil, fmt.Errorf("scenario %s: kind %s needs a failover object in its load", e.Name, KindFailover)
	}
	var sig syscall.Signal
	switch sc.Failover.Signal {
	case load.SignalKill:
		sig = syscall.SIGKILL
	case load.SignalTerm:
		sig = syscall.SIGTERM
	default:
		return nil, 0, nil, fmt.Errorf("scenario %s: failover signal %q: want %s or %s", e.Name, sc.Failover.Signal, load.SignalKill, load.SignalTerm)
	}
	cpus := v.CPUs
	if b.noPin {
		cpus = ""
	}
	var procs []*process
	defer func() {
		for _, p := range procs {
			if p.exited() == nil {
				_ = p.stop(20 * time.Second)
			}
		}
	}()
	var addrs []string
	var shutdown time.Duration
	for _, name := range []string{"A", "B"} {
		port, err := freePort()
		if err != nil {
			return nil, 0, nil, err
		}
		addr := "127.0.0.1:" + itoa(port)
		env := b.serverEnv(e, v, addr)
		shutdown = shutdownTimeout(env)
		log, err := os.Create(filepath.Join(b.logDir, v.Name+"-"+e.Name+"-"+name+".log"))
		if err != nil {
			return nil, 0, nil, fmt.Errorf("server log: %w", err)
		}
		defer log.Close()
		p, err := start(v.Name+" "+name, cpus, []string{filepath.Join(b.bin, v.Binary)}, env, log)
		if err != nil {
			return nil, 0, nil, err
		}
		procs, addrs = append(procs, p), append(addrs, addr)
	}
	for i, p := range procs {
		if err := waitHTTP(ctx, "http://"+addrs[i]+"/readyz", p, 30*time.Second); err != nil {
			return nil, 0, nil, err
		}
	}
	a, bb := procs[0], procs[1]

	sc.URL = "ws://" + addrs[0] + "/ws"
	sc.Failover.URL = "ws://" + addrs[1] + "/ws"
	// The server figures are B's: A does not live to the end.
	sc.MetricsURL = "http://" + addrs[1] + "/metrics"
	b.place(&sc, n)
	rec := &failoverRecord{Signal: sc.Failover.Signal}
	kill := func(context.Context) (time.Time, error) {
		if rss, err := a.peakRSS(); err == nil {
			rec.APeakRSS = rss
		}
		t := time.Now()
		if err := a.cmd.Process.Signal(sig); err != nil {
			return time.Time{}, fmt.Errorf("%s: %s: %w", a.name, sig, err)
		}
		return t, nil
	}
	fmt.Fprintf(b.stderr, "bench: %s/%s: %s\n", v.Name, e.Name, e.Description)
	res, runErr := load.RunFailover(ctx, sc, &prefixWriter{w: b.stderr, prefix: v.Name + "/" + e.Name + " "}, kill)
	if res != nil {
		res.WriteTable(&prefixWriter{w: b.stderr, prefix: v.Name + "/" + e.Name + " | "})
	}
	maxRSS, rssErr := bb.peakRSS()
	if rssErr != nil {
		fmt.Fprintf(b.stderr, "bench: %s/%s: %v\n", v.Name, e.Name, rssErr)
	}
	rec.BPeakRSS = maxRSS
	if res != nil && res.Server != nil && res.Server.Scraped {
		rec.BRSSBefore, rec.BRSSAfter = res.Server.Peak.ResidentBytes, res.Server.After.ResidentBytes
	}
	var aErr error
	if res != nil && res.Failover != nil && res.Failover.DeathUnixNs > 0 {
		aErr = awaitA(a, rec, time.Unix(0, res.Failover.DeathUnixNs), shutdown+aExitGrace)
	}
	stopErr := bb.stop(30 * time.Second)
	return res, maxRSS, rec, errors.Join(runErr, aErr, stopErr)
}

// awaitA waits for the ended instance A to exit and notes when and how: a drained A has
// its WS_SHUTDOWN_TIMEOUT (plus a grace) to exit by itself, a killed one exits at once.
func awaitA(a *process, rec *failoverRecord, death time.Time, grace time.Duration) error {
	ended, err := a.wait(max(grace-time.Since(death), 0))
	if !ended {
		return fmt.Errorf("%s: still running %s after %s", a.name, time.Since(death).Round(time.Millisecond), rec.Signal)
	}
	rec.AExitSeconds = float64(a.exitedAt.Load()-death.UnixNano()) / 1e9
	var ee *exec.ExitError
	switch {
	case err == nil:
		rec.AExit = "exit status 0"
	case errors.As(err, &ee):
		rec.AExit = ee.ProcessState.String()
	default:
		rec.AExit = err.Error()
	}
	return nil
}

// shutdownTimeout is the server's WS_SHUTDOWN_TIMEOUT in env (its default, 15 s, when
// unset or unreadable).
func shutdownTimeout(env map[string]string) time.Duration {
	if d, err := time.ParseDuration(env["WS_SHUTDOWN_TIMEOUT"]); err == nil && d > 0 {
		return d
	}
	return 15 * time.Second
}

// failoverIntro explains the failover table's columns.
const failoverIntro = `Two instances of the variant on the same broker, both pinned to its CPUs: the scenario's clients on A, subscribed positioned, and B's already-connected (standby) clients on B. Mid-load A is ended (SIGKILL, or SIGTERM: a drain); each of its clients reconnects to B (after a uniform jitter, or the draining line's reconnect_after_ms) and resumes with one subscribe of all its channels carrying its positions. Lost, duplicated and out of order are counted per channel sequence across the reconnect (every record the producer had acknowledged must reach every subscriber once, in order). "Recovered after A's end" is from the signal to each client's recovered line; the replay window runs from the first resume request to the last recovered line (the reconnect spread sets most of it); "resumes under way" is how long at least one resume was between its request and its recovered line, and the rate over it B's pace while it had replays to serve. B's RSS: scraped once all clients were subscribed (B holding only its standby clients), peak (VmHWM, over the whole run), and scraped at the end of the load (every client on B). Standby p99 is B's already-connected clients' latency before A's end and from A's end to the last recovered line.

`

// failoverTable is the report's failover table: one row per failover run.
func (rep *report) failoverTable() string {
	var b strings.Builder
	many := rep.repeats() > 1
	for _, r := range rep.records {
		if r.Entry.Kind != KindFailover {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("| variant | scenario | A clients | A ended | resumes recovered | not recovered / failed / unfinished | lost | duplicated | out of order | recovered after A's end p50 / p99 / max s | replayed | replay window s (records/s) | resumes under way s (records/s) | B RSS MiB before / peak / after | standby p99 ms before / storm | status |\n")
			b.WriteString("|---|---|---:|---|---|---|---:|---:|---:|---|---:|---|---|---|---|---|\n")
		}
		name := r.Variant.Name
		if many {
			name = fmt.Sprintf("%s #%d", name, max(r.Repeat, 1))
		}
		status := "ok"
		if r.Row.Problem != "" {
			status = "FAIL: " + r.Row.Problem
		}
		res := r.Result
		if res == nil || res.Failover == nil {
			fmt.Fprintf(&b, "| %s | %s | - | - | - | - | - | - | - | - | - | - | - | - | - | - | %s |\n", name, r.Entry.Name, status)
			continue
		}
		f := res.Failover
		ended := f.Signal
		if fr := r.Failover; fr != nil && fr.AExit != "" {
			ended = fmt.Sprintf("%s; exited after %.2fs (%s)", f.Signal, fr.AExitSeconds, fr.AExit)
		}
		mib := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f", v/(1<<20))
		}
		var rss string
		if fr := r.Failover; fr != nil {
			rss = fmt.Sprintf("%s / %s / %s", mib(fr.BRSSBefore), mib(fr.BPeakRSS), mib(fr.BRSSAfter))
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s / %s / %s | %d | %d | %d | %.2f / %.2f / %.2f | %d | %.2f (%s) | %.3f (%s) | %s | %.1f / %.1f | %s |\n",
			name, r.Entry.Name, f.Clients, ended, counts(f.Recovered), counts(f.NotRecovered), counts(f.Failed), counts(f.Unfinished),
			res.Loss.Lost, res.Loss.Duplicates, res.Loss.OutOfOrder,
			f.RecoveredAfter.P50Ms/1000, f.RecoveredAfter.P99Ms/1000, f.RecoveredAfter.MaxMs/1000,
			f.Replayed, f.ReplayWindowSeconds, num(f.ReplayPerSec), f.ReplayBusySeconds, num(f.ReplayBusyPerSec), rss, f.StandbyBefore.P99Ms, f.StandbyStorm.P99Ms, status)
	}
	return b.String()
}

// failoverDetails is a failover run's lines of the scenario details.
func failoverDetails(b *strings.Builder, r *record) {
	f := r.Result.Failover
	if f == nil {
		b.WriteString("- failover: no figures\n")
		return
	}
	fmt.Fprintf(b, "- failover: A ended by %s %.1fs into the step; %d A clients (connections ended: %s; %d before A's end), %d standby clients on B\n",
		f.Signal, f.AtSeconds, f.Clients, counts(f.Left), f.LeftEarly, f.Standby)
	if fr := r.Failover; fr != nil {
		fmt.Fprintf(b, "- instances: A's peak RSS %.1f MiB when ended, exited %.2fs after the signal (%s); B's RSS %.1f MiB before the failover, peak %.1f MiB, %.1f MiB at the end of the load\n",
			fr.APeakRSS/(1<<20), fr.AExitSeconds, orDash(fr.AExit), fr.BRSSBefore/(1<<20), fr.BPeakRSS/(1<<20), fr.BRSSAfter/(1<<20))
	}
	fmt.Fprintf(b, "- resumes: %d sent (one subscribe of all the client's channels each; %d handshake retries), draining lines %d, reconnect delay p50 %.0fms max %.0fms; recovered %s, not recovered %s, failed %s, unfinished %s\n",
		f.Resumes, f.DialRetries, f.DrainingLines, f.ReconnectDelay.P50Ms, f.ReconnectDelay.MaxMs,
		counts(f.Recovered), counts(f.NotRecovered), counts(f.Failed), counts(f.Unfinished))
	fmt.Fprintf(b, "- recovered line after A's end: p50 %.2fs p99 %.2fs max %.2fs; resume request to recovered line p50 %.1fms p99 %.1fms max %.1fms; B handshake p99 %.1fms\n",
		f.RecoveredAfter.P50Ms/1000, f.RecoveredAfter.P99Ms/1000, f.RecoveredAfter.MaxMs/1000,
		f.ResumeLatency.P50Ms, f.ResumeLatency.P99Ms, f.ResumeLatency.MaxMs, f.ReconnectHandshake.P99Ms)
	fmt.Fprintf(b, "- replay: %d records (the servers' count; the clients read %d messages between their recovering reply and recovered line) from the first resume to the last recovered line, %.2fs: %s records/s; with at least one resume under way %.3fs: %s records/s; gap lines %d\n",
		f.Replayed, f.ReplayReceived, f.ReplayWindowSeconds, num(f.ReplayPerSec), f.ReplayBusySeconds, num(f.ReplayBusyPerSec), f.Gaps)
	fmt.Fprintf(b, "- B's already-connected clients: p50 %.2fms p99 %.2fms max %.2fms before A's end; p50 %.2fms p99 %.2fms max %.2fms during the storm (%.2fs from A's end to the last recovered line); p99 %.2fms after\n",
		f.StandbyBefore.P50Ms, f.StandbyBefore.P99Ms, f.StandbyBefore.MaxMs, f.StandbyStorm.P50Ms, f.StandbyStorm.P99Ms, f.StandbyStorm.MaxMs,
		f.StormSeconds, f.StandbyAfter.P99Ms)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
