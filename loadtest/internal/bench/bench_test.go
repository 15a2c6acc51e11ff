package bench

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

func fanoutResult(p99s []float64, lost []int64) *load.Result {
	r := &load.Result{Scenario: load.Scenario{Mode: load.ModeBroadcast}, Server: &load.ServerFigures{Scraped: true, CPUPerMessageUs: 4}}
	r.Connections.Subscribed = 10
	r.Messages.Received = 100
	r.Loss.Measured = true
	for i, p := range p99s {
		r.Steps = append(r.Steps, load.StepFigures{Rate: float64(10 * (i + 1)), ReceivedPerSec: float64(1000 * (i + 1)), WallPerSec: float64(1000 * (i + 1)),
			Latency: latency.Summary{Count: 10, P99Ms: p}, Lost: lost[i]})
	}
	return r
}

func TestRowFanoutSustainedStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p99s    []float64
		lost    []int64
		want    int
		problem bool
	}{
		{"latency passes the limit at step 2", []float64{5, 20, 150, 30}, []int64{0, 0, 0, 0}, 1, false},
		{"loss at step 1", []float64{5, 20, 30}, []int64{0, 3, 0}, 0, false},
		{"first step already too slow: a note, not a failure", []float64{120}, []int64{0}, -1, false},
		{"loss at the gentlest step fails", []float64{5, 20}, []int64{2, 0}, -1, true},
		{"every step sustained", []float64{1, 2, 3}, []int64{0, 0, 0}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &record{Entry: Entry{Name: "f", Kind: KindFanout, MaxP99Ms: 100}, Variant: Variant{Name: "single", Cores: 1},
				Result: fanoutResult(tt.p99s, tt.lost)}
			w := row(r)
			if w.SustainedStep != tt.want || (w.Problem != "") != tt.problem {
				t.Fatalf("sustained step %d problem %q, want %d problem=%v", w.SustainedStep, w.Problem, tt.want, tt.problem)
			}
			if tt.want < 0 && !tt.problem && w.Note == "" {
				t.Errorf("no note for a run without a sustained step")
			}
			if tt.want >= 0 && w.MsgsPerSec != float64(1000*(tt.want+1)) {
				t.Errorf("msgs/s %v, want the sustained step's", w.MsgsPerSec)
			}
			if w.ProjectedMsgsPerSec != 250000 {
				t.Errorf("projected %v, want 1 core / 4 µs = 250000", w.ProjectedMsgsPerSec)
			}
		})
	}
}

func TestCheckFailsOnLossAndMissingFigures(t *testing.T) {
	t.Parallel()
	ok := &load.Result{Scenario: load.Scenario{Mode: load.ModeBroadcast}, Server: &load.ServerFigures{Scraped: true}}
	ok.Connections.Subscribed, ok.Messages.Received = 5, 50
	ok.Loss = load.LossFigures{Measured: true, Expected: 50, OK: true}
	lossy := *ok
	lossy.Loss = load.LossFigures{Measured: true, Expected: 50, Lost: 2}
	empty := *ok
	empty.Messages.Received = 0
	tests := []struct {
		name string
		res  *load.Result
		err  string
	}{
		{"clean", ok, ""},
		{"loss", &lossy, "LOSS FAIL"},
		{"no figures", &empty, "no figures"},
		{"no result", nil, "no result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &record{Entry: Entry{Name: "m", Kind: KindMarket}, Variant: Variant{Name: "single"}, Result: tt.res}
			if tt.res == nil {
				rec.Error = "server did not start"
			}
			err := buildReport(&File{}, []*record{rec}, true, "d").check()
			if tt.err == "" {
				if err != nil {
					t.Errorf("check() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("check() = %v, want it to mention %q", err, tt.err)
			}
		})
	}
}

func TestReportAndChart(t *testing.T) {
	t.Parallel()
	mk := func(variant string, msgs, cpu, rss, p99, frames float64) *record {
		r := fanoutResult([]float64{p99}, []int64{0})
		r.Loss.OK = true
		r.Server.CPUPerMessageUs = cpu
		r.Server.Delta.Delivered, r.Server.Delta.Frames, r.Server.Delta.CPUSeconds = 1000, frames, 0.004
		r.Server.RSSDeltaPerConnBytes = rss * 1024
		r.Steps[0].ReceivedPerSec, r.Steps[0].WallPerSec, r.Steps[0].ServerPerSec = msgs, msgs, msgs
		r.Steps[0].Seconds, r.Steps[0].ServerCPUUs = 1, cpu/2
		r.Steps[0].Latency = latency.Summary{Count: 10, P50Ms: p99 / 2, P90Ms: p99 * 0.8, P99Ms: p99, P999Ms: p99, MaxMs: p99}
		return &record{Entry: Entry{Name: "fanout", Kind: KindFanout}, Variant: Variant{Name: variant, Cores: 1}, Result: r}
	}
	rep := buildReport(&File{Notes: []string{"a note"}}, []*record{mk("single", 1000, 4, 20, 10, 500), mk("multi", 1800, 4.4, 21, 8, 800)}, false, "2026-01-01")
	rep.SVG, rep.JSONDir = "x.svg", "2026-01-01"
	md := rep.markdown()
	// msgs per frame 2 vs 1.25 (0.62x), CPU per frame 8 vs 5 µs (0.62x).
	for _, want := range []string{"| fanout | 1.80x |", "1.10x / 1.10x | 0.62x | 0.62x |", "| 2.00 |", "(2.00 msgs/frame, 8.00 µs/frame)", "a note", "highest sustained", "x.svg"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	svg := chart(rep)
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
	if !strings.Contains(svg, "polyline") || !strings.Contains(svg, "<rect") {
		t.Error("chart lacks the latency lines or the throughput bars")
	}
}

func TestScenarioFileLoadsAndMerges(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "..", "bench", "scenarios.json")
	f, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range f.Scenarios {
		names[e.Kind] = true
		for _, smoke := range []bool{false, true} {
			raw, err := merge(f.Defaults, e.Load)
			if err != nil {
				t.Fatal(err)
			}
			if smoke {
				if raw, err = merge(raw, e.Smoke); err != nil {
					t.Fatal(err)
				}
			}
			var sc load.Scenario
			if err := json.Unmarshal(raw, &sc); err != nil {
				t.Fatalf("%s: %v", e.Name, err)
			}
			sc.URL, sc.Brokers, sc.Topic = "ws://127.0.0.1:1/ws", []string{"127.0.0.1:9092"}, f.Topic
			if (e.Kind == KindFailover) != (sc.Failover != nil) {
				t.Errorf("%s: kind %s with failover %v: a failover object belongs to kind failover, and it needs one", e.Name, e.Kind, sc.Failover)
			}
			if sc.Failover != nil {
				sc.Failover.URL = "ws://127.0.0.1:2/ws"
			}
			if err := sc.Validate(); err != nil {
				t.Errorf("%s (smoke %v): %v", e.Name, smoke, err)
			}
			if smoke && sc.Clients() > 200 {
				t.Errorf("%s smoke runs %d connections; keep smoke small", e.Name, sc.Clients())
			}
		}
	}
	for _, k := range []string{KindFanout, KindMarket, KindCapacity, KindSlow, KindStorm, KindFailover, KindMobile} {
		if !names[k] {
			t.Errorf("no %s scenario in %s", k, path)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

// failoverRun is a failover run of 10 A clients with the given figures and loss.
func failoverRun(variant string, f *load.FailoverFigures, lost int64) *record {
	res := &load.Result{Scenario: load.Scenario{Mode: load.ModeBroadcast}, Server: &load.ServerFigures{Scraped: true}, Failover: f}
	res.Connections.Subscribed, res.Messages.Received = 12, 1000
	res.Loss = load.LossFigures{Measured: true, Expected: 1000, Lost: lost, OK: lost == 0 && f.Problem() == ""}
	res.Server.Peak.ResidentBytes, res.Server.After.ResidentBytes = 20<<20, 60<<20
	return &record{Entry: Entry{Name: "failover-kill", Kind: KindFailover}, Variant: Variant{Name: variant, Cores: 1}, Result: res,
		ServerMaxRSS: 80 << 20, Failover: &failoverRecord{Signal: load.SignalKill, AExitSeconds: 0.01, AExit: "signal: killed",
			BRSSBefore: 20 << 20, BPeakRSS: 80 << 20, BRSSAfter: 60 << 20}}
}

func TestFailoverReport(t *testing.T) {
	t.Parallel()
	good := &load.FailoverFigures{Signal: load.SignalKill, DeathUnixNs: 1, Clients: 10, Standby: 2, Left: map[string]int64{"eof": 10},
		Resumes: 10, Recovered: map[string]int64{"memory": 10}, Replayed: 300, ReplayWindowSeconds: 1.5, ReplayPerSec: 200, ReplayBusySeconds: 0.25, ReplayBusyPerSec: 1200,
		RecoveredAfter: latency.Summary{Count: 10, P50Ms: 1000, P99Ms: 1900, MaxMs: 2100},
		StandbyBefore:  latency.Summary{Count: 5, P99Ms: 3.5}, StandbyStorm: latency.Summary{Count: 5, P99Ms: 42}}
	bad := *good
	bad.Recovered = map[string]int64{"memory": 9}
	bad.NotRecovered = map[string]int64{"busy": 1}
	rep := buildReport(&File{}, []*record{failoverRun("single", good, 0), failoverRun("multi", &bad, 7)}, true, "d")
	md := rep.markdown()
	for _, want := range []string{
		"## Failover",
		"| single | failover-kill | 10 | SIGKILL; exited after 0.01s (signal: killed) | memory=10 | none / none / none | 0 | 0 | 0 | 1.00 / 1.90 / 2.10 | 300 | 1.50 (200) | 0.250 (1200) | 20 / 80 / 60 | 3.5 / 42.0 | ok |",
		"| multi | failover-kill | 10 |", "busy=1 / none / none | 7 |",
		"B's already-connected clients: p50",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	err := rep.check()
	if err == nil || !strings.Contains(err.Error(), "multi/failover-kill") || strings.Contains(err.Error(), "single/") {
		t.Errorf("check() = %v, want the multi run failed (a resume not recovered, loss) and the single run passed", err)
	}
	if !strings.Contains(err.Error(), "1 resumes not recovered (busy=1)") {
		t.Errorf("check() = %v, want it to name the resume not recovered", err)
	}
}
