package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgainstReport: a variant that is a baseline (the same binary with a feature off)
// gets its own ratio table against the variant it is the baseline of, with the history's
// memory beside it, and runs only its listed scenarios.
func TestAgainstReport(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	date := "2026-12-06"
	dir := filepath.Join(out, date)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	on, off := marketRecord("single", 1, 10.3, 20, 30), marketRecord("single-history-off", 1, 10, 20, 29)
	on.Result.Server.Peak.HistoryBytes = 3 << 20
	on.Result.Server.Peak.ResidentBytes, off.Result.Server.Peak.ResidentBytes = 40<<20, 36<<20
	for _, r := range []*record{on, off} {
		if err := writeJSON(filepath.Join(dir, recordFile(r.Variant.Name, "latency", 1)), r); err != nil {
			t.Fatal(err)
		}
	}
	scen := writeTemp(t, "scenarios.json", `{"topic": "trades",
		"variants": [{"name": "single", "binary": "ws-single", "cores": 1},
			{"name": "single-history-off", "binary": "ws-single", "cores": 1, "server_env": {"WS_HISTORY_RECORDS": "0"}, "against": "single", "scenarios": ["latency"]}],
		"scenarios": [{"name": "latency", "kind": "market", "load": {}}, {"name": "storm", "kind": "storm", "load": {}}]}`)
	s := reportOnly(t, scen, out, date)
	for _, want := range []string{
		"## single / single-history-off",
		"| latency | 1.00x | - | - | 1.03x / - |",
		"| latency | 3.0 | +4.0 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	f, err := readFile(scen)
	if err != nil {
		t.Fatal(err)
	}
	base := f.Variants[1]
	if !base.runs(f.Scenarios[0]) || base.runs(f.Scenarios[1]) {
		t.Errorf("single-history-off runs latency %v, storm %v; want only latency", base.runs(f.Scenarios[0]), base.runs(f.Scenarios[1]))
	}
	if env := (&bencher{file: f}).serverEnv(f.Scenarios[0], base, "127.0.0.1:1"); env["WS_HISTORY_RECORDS"] != "0" {
		t.Errorf("server env %v lacks the variant's WS_HISTORY_RECORDS=0", env)
	}
}
