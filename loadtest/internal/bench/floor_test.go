package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/floor"
	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// scenarioFile is a minimal scenarios.json with floor as given ("" for none).
func scenarioFile(floorJSON string) string {
	s := `{"topic": "trades", "variants": [{"name": "single", "binary": "ws-single", "cpus": "0", "cores": 1}],
  "defaults": {"payload_bytes": 100},
  "scenarios": [{"name": "latency", "kind": "market",
    "load": {"mode": "broadcast", "conns": 10000, "channels": 100, "subs_per_conn": 1, "steps": [{"rate": 1000, "duration": "15s"}]},
    "smoke": {"conns": 80, "steps": [{"rate": 200, "duration": "2s"}]}}]`
	if floorJSON != "" {
		s += `, "floor": ` + floorJSON
	}
	return s + "}\n"
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadFileFloor(t *testing.T) {
	t.Parallel()
	const good = `{"conns": 9000, "payload": 217, "rates": [50000, 100000], "duration": "3s", "scenario": "latency",
	  "smoke": {"conns": 50, "rates": [2000], "duration": "500ms"}}`
	tests := []struct {
		name      string
		floor     string
		want      *FloorSpec // the full spec's figures; nil when the file has none
		wantSmoke FloorSpec
		err       string
	}{
		{name: "without floor"},
		{
			name:      "with floor and smoke overrides",
			floor:     good,
			want:      &FloorSpec{Conns: 9000, Payload: 217, Rates: []int{50000, 100000}, Duration: load.Duration(3 * time.Second), Scenario: "latency"},
			wantSmoke: FloorSpec{Conns: 50, Payload: 217, Rates: []int{2000}, Duration: load.Duration(500 * time.Millisecond), Scenario: "latency"},
		},
		{
			name:      "without smoke overrides smoke runs the full spec",
			floor:     `{"conns": 10, "payload": 100, "rates": [1000], "duration": "1s"}`,
			want:      &FloorSpec{Conns: 10, Payload: 100, Rates: []int{1000}, Duration: load.Duration(time.Second)},
			wantSmoke: FloorSpec{Conns: 10, Payload: 100, Rates: []int{1000}, Duration: load.Duration(time.Second)},
		},
		{name: "unknown scenario", floor: `{"conns": 10, "payload": 100, "rates": [1000], "duration": "1s", "scenario": "nope"}`, err: `scenario "nope"`},
		{name: "no rates", floor: `{"conns": 10, "payload": 100, "duration": "1s"}`, err: "no rates"},
		{name: "smoke over the fd limit", floor: `{"conns": 10, "payload": 100, "rates": [1000], "duration": "1s", "smoke": {"conns": 50000}}`, err: "smoke true"},
		{name: "bad duration", floor: `{"conns": 10, "payload": 100, "rates": [1000], "duration": "soon"}`, err: "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := readFile(writeTemp(t, "scenarios.json", scenarioFile(tt.floor)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("readFile = %v, want an error about %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if f.Floor != nil {
					t.Fatalf("floor %+v, want none", f.Floor)
				}
				return
			}
			if f.Floor == nil {
				t.Fatal("floor not parsed")
			}
			for _, c := range []struct {
				smoke bool
				want  FloorSpec
			}{{false, *tt.want}, {true, tt.wantSmoke}} {
				got := f.Floor.forRun(c.smoke)
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(c.want)
				if !bytes.Equal(gj, wj) {
					t.Errorf("smoke %v: spec %s, want %s", c.smoke, gj, wj)
				}
			}
		})
	}
}

// The repository's own file carries the probe at the latency scenario's shape, and a smoke
// version small enough for make bench-smoke.
func TestScenarioFileFloor(t *testing.T) {
	t.Parallel()
	f, err := readFile(filepath.Join("..", "..", "..", "bench", "scenarios.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Floor == nil {
		t.Fatal("bench/scenarios.json has no floor object")
	}
	full, smoke := f.Floor.forRun(false), f.Floor.forRun(true)
	if full.Scenario != "latency" || full.Conns > 9500 {
		t.Errorf("floor %+v: want it priced against latency, conns under the open-file limit", full)
	}
	if smoke.Conns > 200 || smoke.Duration.D()*time.Duration(len(smoke.Rates)) > 2*time.Second {
		t.Errorf("smoke floor %+v: keep it small", smoke)
	}
}

func TestPriceScenario(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		smoke      bool
		deliveries float64
		perRecord  float64
	}{
		{"full: 1K records/s to 10K conns over 100 channels", false, 100000, 100},
		{"smoke: 200 records/s to 80 conns over 100 channels", true, 160, 0.8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := readFile(writeTemp(t, "scenarios.json", scenarioFile(`{"conns": 10, "payload": 100, "rates": [1000], "duration": "1s", "scenario": "latency"}`)))
			if err != nil {
				t.Fatal(err)
			}
			b := &bencher{file: f, smoke: tt.smoke}
			rec := &floorRecord{Spec: f.Floor.forRun(tt.smoke)}
			if err := b.priceScenario(rec); err != nil {
				t.Fatal(err)
			}
			if rec.Scenario != "latency" || rec.DeliveriesPerSec != tt.deliveries || rec.SubscribersPerRecord != tt.perRecord {
				t.Errorf("priced %+v, want %v deliveries/s, %v subscribers per record", rec, tt.deliveries, tt.perRecord)
			}
		})
	}
}

func measuredFloor() *floorRecord {
	return &floorRecord{
		Spec:       FloorSpec{Conns: 9000, Payload: 217, Rates: []int{50000, 100000}, Duration: load.Duration(3 * time.Second), Scenario: "latency"},
		WriterCPUs: "0", Scenario: "latency", RecordsPerSec: 1000, SubscribersPerRecord: 100, DeliveriesPerSec: 100000,
		Report: &floor.Report{Conns: 9000, Payload: 217, WriterCPUs: "0", ReaderCPUs: "1", Runs: []floor.RateFigures{
			{Rate: 50000, Achieved: 49990, Writes: 150000, UsPerWrite: 9.0, CoreShare: 0.45},
			{Rate: 100000, Achieved: 99000, Writes: 300000, UsPerWrite: 9.5, CoreShare: 0.94, EAGAIN: 3},
		}},
	}
}

func TestFloorSection(t *testing.T) {
	t.Parallel()
	unpriced := measuredFloor()
	unpriced.Scenario, unpriced.DeliveriesPerSec = "", 0
	unpriced.WriterCPUs, unpriced.Report.ReaderCPUs = "", ""
	tests := []struct {
		name string
		rec  *floorRecord
		want []string
		not  []string
	}{
		{name: "no probe", rec: nil, not: []string{"Host write floor"}},
		{name: "probe failed", rec: &floorRecord{Error: "floor: exit status 1"}, want: []string{"## Host write floor", "Not measured: floor: exit status 1."}},
		{
			name: "measured and priced",
			rec:  measuredFloor(),
			want: []string{
				"## Host write floor", "217 B", "9000 loopback connections", "writer pinned to CPUs 0 as ws-single is", "reader process on CPUs 1 (the generator's)",
				"| 50.0K | 50.0K | 9.00 | 45% | 0 |", "| 100.0K | 99.0K | 9.50 | 94% | 3 |",
				"latency scenario's deliveries (1000 records/s × 100 subscribers per record) are 100.0K single-message writes/s",
				"at 9.50 µs/write (measured at 100.0K/s) they cost 0.95 core here in the kernel alone",
			},
		},
		{name: "measured unpinned, no scenario to price", rec: unpriced, want: []string{"| 50.0K |", "writer not pinned (CPUs 0)", "reader process not pinned"}, not: []string{"kernel alone", "as ws-single"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := floorSection(tt.rec)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("section lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("section has %q:\n%s", n, got)
				}
			}
		})
	}
}

func TestNearestRun(t *testing.T) {
	t.Parallel()
	runs := []floor.RateFigures{{Rate: 50000, Writes: 1}, {Rate: 100000, Writes: 1}, {Rate: 150000}}
	tests := []struct {
		want float64
		rate int
	}{
		{100000, 100000},
		{160, 50000},
		{75000, 100000}, // a tie takes the higher rate
		{1e6, 100000},   // the run without writes does not count
	}
	for _, tt := range tests {
		if got, ok := nearestRun(runs, tt.want); !ok || got.Rate != tt.rate {
			t.Errorf("nearestRun(%v) = %d, %v; want %d", tt.want, got.Rate, ok, tt.rate)
		}
	}
	if _, ok := nearestRun(nil, 1); ok {
		t.Error("nearestRun(nil) found a run")
	}
}

// --report-only rebuilds the floor section from floor.json, and the markdown puts it after
// the notes and before the results, which keep their table.
func TestReportOnlyRebuildsFloor(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	date := "2026-01-02"
	scen := writeTemp(t, "scenarios.json", scenarioFile(`{"conns": 10, "payload": 100, "rates": [1000], "duration": "1s", "scenario": "latency"}`))
	res := &load.Result{Scenario: load.Scenario{Mode: load.ModeBroadcast}, Server: &load.ServerFigures{Scraped: true}}
	res.Connections.Subscribed, res.Messages.Received = 5, 50
	res.Loss = load.LossFigures{Measured: true, Expected: 50, OK: true}
	rec := &record{Entry: Entry{Name: "latency", Kind: KindMarket}, Variant: Variant{Name: "single"}, Result: res}
	dir := filepath.Join(out, date)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(filepath.Join(dir, "single-latency.json"), rec); err != nil {
		t.Fatal(err)
	}
	if err := writeFloorJSON(dir, measuredFloor()); err != nil {
		t.Fatal(err)
	}
	s := reportOnly(t, scen, out, date)
	floorAt, resultsAt := strings.Index(s, "## Host write floor"), strings.Index(s, "## Results")
	if floorAt < 0 || resultsAt < floorAt || !strings.Contains(s, "0.95 core here in the kernel alone") {
		t.Errorf("report lacks the floor section before the results:\n%s", s)
	}
	if !strings.Contains(s, "| single | latency |") {
		t.Errorf("results table lost its row:\n%s", s)
	}

	// A failed probe fails the verdict, as a failed scenario does.
	if err := writeFloorJSON(dir, &floorRecord{Error: "floor: reader: exit status 1"}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := Run(t.Context(), []string{"--report-only", "--scenarios", scen, "--out-dir", out, "--date", date}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "floor: reader") {
		t.Errorf("report-only with a failed probe = %v, want the probe's error", err)
	}
}

// reportOnly runs `loadtest bench --report-only` on the results under out/date and returns
// the report it wrote.
func reportOnly(t *testing.T, scen, out, date string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := Run(t.Context(), []string{"--report-only", "--scenarios", scen, "--out-dir", out, "--date", date}, &stdout, &stderr); err != nil {
		t.Fatalf("report-only: %v (stderr %q)", err, stderr.String())
	}
	md, err := os.ReadFile(filepath.Join(out, date+".md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(md)
}
