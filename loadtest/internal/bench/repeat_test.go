package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

func TestTurnOrder(t *testing.T) {
	t.Parallel()
	vs := []Variant{{Name: "single"}, {Name: "multi"}, {Name: "other"}}
	tests := []struct {
		k    int
		want []string
	}{
		{1, []string{"single", "multi", "other"}},
		{2, []string{"multi", "other", "single"}},
		{3, []string{"other", "single", "multi"}},
		{4, []string{"single", "multi", "other"}},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range turnOrder(vs, tt.k) {
			got = append(got, v.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("turnOrder(run %d) = %v, want %v", tt.k, got, tt.want)
		}
	}
	if vs[0].Name != "single" {
		t.Error("turnOrder changed its argument")
	}
	if turnOrder(nil, 1) != nil {
		t.Error("turnOrder of no variants is not empty")
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	rows := func(v ...float64) []*record {
		var out []*record
		for _, x := range v {
			out = append(out, &record{Row: Row{CPUPerMsgUs: x}})
		}
		return out
	}
	cpu := func(w Row) float64 { return w.CPUPerMsgUs }
	tests := []struct {
		name string
		runs []*record
		want float64
	}{
		{"one run", rows(7), 7},
		{"odd count: the middle", rows(12, 10, 11), 11},
		{"even count: mean of the middle two", rows(10, 14, 12, 20), 13},
		{"a run without the figure: none", rows(10, 0, 12), 0},
		{"no runs", nil, 0},
	}
	for _, tt := range tests {
		if got := median(tt.runs, cpu); got != tt.want {
			t.Errorf("%s: median = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// marketRecord is a clean market-kind run of 10 connections with the given CPU per
// message, p99 and peak RSS per connection (KB over an idle process of 0).
func marketRecord(variant string, repeat int, cpu, p99, maxRSSKB float64) *record {
	res := &load.Result{Scenario: load.Scenario{Mode: load.ModeBroadcast}, Server: &load.ServerFigures{Scraped: true, CPUPerMessageUs: cpu}}
	res.Connections.Subscribed, res.Messages.Received, res.Messages.ReceivedPerSec = 10, 1000, 1000
	res.Loss = load.LossFigures{Measured: true, Expected: 1000, OK: true}
	res.Messages.Latency = latency.Summary{Count: 1000, P50Ms: p99 / 2, P90Ms: p99, P99Ms: p99, P999Ms: p99, MaxMs: p99}
	res.Server.Delta.Delivered, res.Server.Delta.Frames, res.Server.Delta.CPUSeconds = 1000, 1000, cpu*1000/1e6
	res.Server.Peak.Connections = 10
	return &record{Entry: Entry{Name: "latency", Kind: KindMarket}, Variant: Variant{Name: variant, Cores: 1}, Repeat: repeat, Result: res,
		ServerMaxRSS: maxRSSKB * 1024 * 10}
}

// TestRepeatsReport writes three interleaved runs per variant as `loadtest bench --repeat 3`
// names them and rebuilds the report from them: every run has its row, and the ratio
// table compares medians, with the range of the ratios of the runs paired by round.
func TestRepeatsReport(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	date := "2026-01-03"
	dir := filepath.Join(out, date)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// single 10, 11, 12 µs/msg; multi 12, 14, 13: medians 11 and 13 (1.18x); pairs
	// 1.20x, 1.27x, 1.08x. Peak RSS 20 KB/conn against 19, 21, 40: median 21 (1.05x),
	// where the mean would be 1.33x.
	cpus := map[string][]float64{"single": {10, 11, 12}, "multi": {12, 14, 13}}
	rss := map[string][]float64{"single": {20, 20, 20}, "multi": {19, 21, 40}}
	for v, cs := range cpus {
		for i, c := range cs {
			rec := marketRecord(v, i+1, c, 10*c, rss[v][i])
			if err := writeJSON(filepath.Join(dir, recordFile(v, "latency", i+1)), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "single-latency.json")); err != nil {
		t.Fatalf("the first run does not keep the name runs without repeats use: %v", err)
	}
	scen := writeTemp(t, "scenarios.json", `{"topic": "trades",
		"variants": [{"name": "single", "binary": "ws-single", "cores": 1}, {"name": "multi", "binary": "ws-multi", "cores": 2}],
		"scenarios": [{"name": "latency", "kind": "market", "load": {}}]}`)
	s := reportOnly(t, scen, out, date)
	for _, want := range []string{
		"| single #1 | latency |", "| single #3 | latency |", "| multi #2 | latency |",
		"Medians of 3 runs per variant",
		"| latency | 1.00x | - | - | 1.18x (1.08-1.27) / - | 1.00x | 1.18x | - | 1.05x | 1.18x |",
		"| multi #3 | latency | 0 | 1000 | 0 | 65.00 | 130.00 | 130.00 | 130.00 | 0 | 10 | 0 | 0.0 | 40.0 |",
		"peak RSS 0.4 MiB (40.0 KB/conn)",
		"### multi / latency (run 3 of 3)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	// The chart draws one run per variant: the median one.
	rep := buildReport(&File{}, mustRead(t, scen, dir), false, date)
	var shown []float64
	for _, r := range rep.shown() {
		shown = append(shown, r.Row.CPUPerMsgUs)
	}
	if !slices.Equal(shown, []float64{11, 13}) {
		t.Errorf("chart runs have CPU %v µs/msg, want the medians [11 13]", shown)
	}
}

func mustRead(t *testing.T, scen, dir string) []*record {
	t.Helper()
	f, err := readFile(scen)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readRecords(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("read %d runs, want 6", len(recs))
	}
	return recs
}

func TestRepeatFlagAndFileValidate(t *testing.T) {
	t.Parallel()
	bad := writeTemp(t, "bad.json", `{"topic": "t", "repeat": -1,
		"variants": [{"name": "single", "binary": "ws-single"}], "scenarios": [{"name": "m", "kind": "market", "load": {}}]}`)
	if _, err := readFile(bad); err == nil || !strings.Contains(err.Error(), "repeat -1") {
		t.Errorf("readFile with repeat -1 = %v, want an error naming it", err)
	}
	ok := writeTemp(t, "ok.json", `{"topic": "t", "repeat": 3,
		"variants": [{"name": "single", "binary": "ws-single"}], "scenarios": [{"name": "m", "kind": "market", "load": {}}]}`)
	var stdout, stderr bytes.Buffer
	err := Run(t.Context(), []string{"--scenarios", ok, "--repeat", "-2"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "repeat -2") {
		t.Errorf("--repeat -2 = %v, want an error naming it", err)
	}
}
