// Package bench is `loadtest bench`, what `make bench` and `make bench-smoke` run: a named
// set of scenarios (bench/scenarios.json) against every server variant in the same run,
// each server started fresh per scenario, with the local broker (`loadtest dev`) in a
// process of its own. It writes a markdown table with multi/single ratios, the JSON result
// of every run and an SVG chart, and fails on loss or on a scenario without figures.
package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// Kinds of scenario: they decide which figures a row shows and what counts as a failure.
const (
	KindFanout   = "fanout"   // steps up the rate; highest step with p99 under the limit and no loss
	KindMarket   = "market"   // latency percentiles and loss at a fixed rate
	KindCapacity = "capacity" // connections held, RSS per connection, handshakes/s
	KindSlow     = "slow"     // like market with slow consumers; compared to CompareTo
	KindStorm    = "storm"    // everyone connects at once; time until all subscribed
	KindFailover = "failover" // two instances; A ended mid-load, its clients resume on B
	KindMobile   = "mobile"   // like market with throttled (mobile) clients; compared to CompareTo
)

// File is bench/scenarios.json.
type File struct {
	// Notes are printed at the top of the report.
	Notes []string `json:"notes"`
	// Partitions per topic of the broker.
	Partitions int `json:"partitions"`
	// Topic the producer publishes to and the servers consume.
	Topic string `json:"topic"`
	// ServerEnv applies to every server start; a scenario's ServerEnv overrides it.
	ServerEnv map[string]string `json:"server_env"`
	// Variants are the servers under test.
	Variants []Variant `json:"variants"`
	// Defaults are load.Scenario fields every scenario starts from.
	Defaults json.RawMessage `json:"defaults"`
	// Scenarios run in order, each against every variant.
	Scenarios []Entry `json:"scenarios"`
	// Floor is the loopback write-floor probe run once before the scenarios; nil skips it.
	Floor *FloorSpec `json:"floor,omitempty"`
	// Repeat is how many times each scenario runs against every variant (0 or 1: once).
	// Repeats interleave the variants, each going first in turn, and the ratio table
	// compares medians: one run of a loaded 2-core host moves a figure by several percent.
	Repeat int `json:"repeat,omitempty"`
}

// Variant is one server build.
type Variant struct {
	// Name is "single" or "multi"; the ratio column is Name "multi" over Name "single".
	Name string `json:"name"`
	// Binary is the file name in the bin directory.
	Binary string `json:"binary"`
	// CPUs is the taskset CPU list the server is pinned to ("" = not pinned).
	CPUs string `json:"cpus"`
	// Cores is how many cores the variant may use, for the CPU-accounting projection.
	Cores int `json:"cores"`
	// ServerEnv adds to File.ServerEnv for this variant's servers (a scenario's overrides
	// both): a variant can be a binary with a feature turned off.
	ServerEnv map[string]string `json:"server_env,omitempty"`
	// Against names the variant this one is the baseline of: the report then has a table
	// Against / Name (e.g. "single" with the history against "single-history-off"). With
	// LoadAuth it names the variant this one adds auth to, and the table is Name / Against.
	Against string `json:"against,omitempty"`
	// Scenarios limits the variant to these scenarios (empty: all).
	Scenarios []string `json:"scenarios,omitempty"`
	// LoadAuth, when set, makes the load authenticate: one token per scenario run, sent by
	// every connection first (see LoadAuth). Such a variant is the feature turned on over
	// its Against, so its tables are Name / Against (auth on / off).
	LoadAuth *LoadAuth `json:"load_auth,omitempty"`
}

// runs reports whether the variant runs scenario e.
func (v Variant) runs(e Entry) bool {
	return len(v.Scenarios) == 0 || slices.Contains(v.Scenarios, e.Name)
}

// Entry is one named scenario.
type Entry struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
	// CompareTo names the scenario whose p99 a slow-consumer or mobile run is compared with.
	CompareTo string `json:"compare_to,omitempty"`
	// MaxP99Ratio is the bound of a mobile run's healthy clients' p99 over CompareTo's p99
	// in the same round (a verdict in the report, not a failure: one run of a loaded host
	// moves a p99 by more than a bound's margin); 0: no verdict.
	MaxP99Ratio float64 `json:"max_p99_ratio,omitempty"`
	// MaxP99Ms is the fan-out latency limit of a sustained step.
	MaxP99Ms float64 `json:"max_p99_ms,omitempty"`
	// ServerEnv adds to or overrides File.ServerEnv for this scenario; SmokeServerEnv adds
	// to or overrides both under `--smoke`.
	ServerEnv      map[string]string `json:"server_env,omitempty"`
	SmokeServerEnv map[string]string `json:"smoke_server_env,omitempty"`
	// Load are load.Scenario fields over Defaults; Smoke are fields over Load for
	// `--smoke` (a few seconds, few connections).
	Load  json.RawMessage `json:"load"`
	Smoke json.RawMessage `json:"smoke,omitempty"`
}

func readFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenarios: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("scenarios %s: %w", path, err)
	}
	if len(f.Variants) == 0 || len(f.Scenarios) == 0 {
		return nil, fmt.Errorf("scenarios %s: need variants and scenarios", path)
	}
	if f.Topic == "" {
		return nil, fmt.Errorf("scenarios %s: topic is empty", path)
	}
	if f.Repeat < 0 {
		return nil, fmt.Errorf("scenarios %s: repeat %d: need >= 0", path, f.Repeat)
	}
	kinds := []string{KindFanout, KindMarket, KindCapacity, KindSlow, KindStorm, KindFailover, KindMobile}
	for _, e := range f.Scenarios {
		if !slices.Contains(kinds, e.Kind) {
			return nil, fmt.Errorf("scenario %q: kind %q: want one of %v", e.Name, e.Kind, kinds)
		}
	}
	for _, v := range f.Variants {
		if v.LoadAuth == nil {
			continue
		}
		if err := v.LoadAuth.validate(&f, v); err != nil {
			return nil, fmt.Errorf("scenarios %s: variant %s: load_auth: %w", path, v.Name, err)
		}
	}
	if f.Floor != nil {
		if err := f.Floor.validate(&f); err != nil {
			return nil, fmt.Errorf("scenarios %s: %w", path, err)
		}
	}
	return &f, nil
}

// merge overlays JSON objects left to right (later keys win).
func merge(parts ...json.RawMessage) (json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p, &m); err != nil {
			return nil, fmt.Errorf("scenario fields: %w", err)
		}
		for k, v := range m {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("scenario fields: %w", err)
	}
	return b, nil
}
