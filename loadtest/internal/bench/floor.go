package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/floor"
	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// FloorSpec is the optional "floor" object of bench/scenarios.json: the loopback write-floor
// probe (`loadtest floor`, package floor) that runs once at the start of a bench, so the
// report states what one write(2) costs on this host next to the latency results.
type FloorSpec struct {
	// Description says why these figures (JSON has no comments); not in the report.
	Description string `json:"description,omitempty"`
	// Conns are the loopback connections the writes go round-robin over.
	Conns int `json:"conns"`
	// Payload is the bytes of one write(2): about one server message of Scenario.
	Payload int `json:"payload"`
	// Rates are the write(2) calls per second measured, one after another.
	Rates []int `json:"rates"`
	// Duration is how long each rate runs.
	Duration load.Duration `json:"duration"`
	// Scenario names the scenario whose deliveries the report prices at the floor.
	Scenario string `json:"scenario"`
	// Smoke overrides the non-zero fields it sets for `--smoke`.
	Smoke *FloorSpec `json:"smoke,omitempty"`
}

// forRun returns the spec a run uses: with the smoke overrides when smoke is set.
func (s FloorSpec) forRun(smoke bool) FloorSpec {
	out := s
	out.Smoke, out.Description = nil, ""
	if !smoke || s.Smoke == nil {
		return out
	}
	o := s.Smoke
	if o.Conns != 0 {
		out.Conns = o.Conns
	}
	if o.Payload != 0 {
		out.Payload = o.Payload
	}
	if len(o.Rates) > 0 {
		out.Rates = o.Rates
	}
	if o.Duration != 0 {
		out.Duration = o.Duration
	}
	if o.Scenario != "" {
		out.Scenario = o.Scenario
	}
	return out
}

func (s FloorSpec) config() floor.Config {
	return floor.Config{Conns: s.Conns, Payload: s.Payload, Rates: s.Rates, Duration: s.Duration.D()}
}

// validate checks both the full and the smoke spec against the scenario file.
func (s FloorSpec) validate(f *File) error {
	for _, smoke := range []bool{false, true} {
		r := s.forRun(smoke)
		cfg := r.config()
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("floor (smoke %v): %w", smoke, err)
		}
		if r.Scenario != "" && !slices.ContainsFunc(f.Scenarios, func(e Entry) bool { return e.Name == r.Scenario }) {
			return fmt.Errorf("floor: scenario %q is not in the file", r.Scenario)
		}
	}
	return nil
}

// floorRecord is floor.json: the probe's spec, its figures, and the deliveries of the
// scenario it is set against, so `--report-only` rebuilds the section from it alone.
type floorRecord struct {
	Spec FloorSpec `json:"spec"`
	// WriterCPUs is the taskset list the probe's writer ran on (the first variant's).
	WriterCPUs string `json:"writer_cpus"`
	// Scenario and its figures: records/s of its first step times subscribers per record
	// (its subscriptions over its channels, as records go round-robin over the channels).
	Scenario             string        `json:"scenario,omitempty"`
	RecordsPerSec        float64       `json:"records_per_sec,omitempty"`
	SubscribersPerRecord float64       `json:"subscribers_per_record,omitempty"`
	DeliveriesPerSec     float64       `json:"deliveries_per_sec,omitempty"`
	Report               *floor.Report `json:"report,omitempty"`
	Error                string        `json:"error,omitempty"`
}

const floorFile = "floor.json"

// runFloor runs `loadtest floor --json` once, the writer pinned like the first variant (ws-single)
// and the reader on the bench's own CPUs (the generator's), in a process of its own as the
// servers are. It never fails the caller: the record carries the error.
func (b *bencher) runFloor(ctx context.Context) *floorRecord {
	spec := b.file.Floor.forRun(b.smoke)
	rec := &floorRecord{Spec: spec}
	if err := b.priceScenario(rec); err != nil {
		rec.Error = err.Error()
		return rec
	}
	rep, err := b.execFloor(ctx, spec, rec)
	if err != nil {
		rec.Error = err.Error()
		return rec
	}
	rec.Report = rep
	return rec
}

func (b *bencher) execFloor(ctx context.Context, spec FloorSpec, rec *floorRecord) (*floor.Report, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("floor: find executable: %w", err)
	}
	var rates []string
	for _, r := range spec.Rates {
		rates = append(rates, strconv.Itoa(r))
	}
	argv := []string{exe, "floor", "--json", "--conns", itoa(spec.Conns), "--payload", itoa(spec.Payload),
		"--rate", strings.Join(rates, ","), "--duration", spec.Duration.D().String()}
	if !b.noPin {
		readerCPUs, err := floor.Affinity()
		if err != nil {
			return nil, err
		}
		argv = append(argv, "--reader-cpus", readerCPUs)
		if len(b.file.Variants) > 0 && b.file.Variants[0].CPUs != "" {
			rec.WriterCPUs = b.file.Variants[0].CPUs
			argv = append([]string{"taskset", "-c", rec.WriterCPUs}, argv...)
		}
	}
	log, err := os.Create(filepath.Join(b.logDir, "floor.log"))
	if err != nil {
		return nil, fmt.Errorf("floor log: %w", err)
	}
	defer log.Close()
	// The probe's own bounds (accept, reader deadline) are tighter; this is the backstop.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute+time.Duration(len(spec.Rates))*(spec.Duration.D()+time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	cmd.WaitDelay = 10 * time.Second
	fmt.Fprintf(b.stderr, "bench: floor: %d connections, %d B writes at %v/s for %s each\n", spec.Conns, spec.Payload, spec.Rates, spec.Duration.D())
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("floor: %w (log %s)", err, log.Name())
	}
	var rep floor.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("floor: decode report: %w", err)
	}
	if err := rep.WriteTable(&prefixWriter{w: b.stderr, prefix: "floor | "}); err != nil {
		return nil, err
	}
	return &rep, nil
}

// priceScenario fills in the deliveries per second of the scenario the floor is set against.
func (b *bencher) priceScenario(rec *floorRecord) error {
	if rec.Spec.Scenario == "" {
		return nil
	}
	for _, e := range b.file.Scenarios {
		if e.Name != rec.Spec.Scenario {
			continue
		}
		raw, err := merge(b.file.Defaults, e.Load)
		if err != nil {
			return err
		}
		if b.smoke {
			if raw, err = merge(raw, e.Smoke); err != nil {
				return err
			}
		}
		var sc load.Scenario
		if err := json.Unmarshal(raw, &sc); err != nil {
			return fmt.Errorf("floor: scenario %s: %w", e.Name, err)
		}
		if len(sc.Steps) == 0 || sc.Channels < 1 {
			return fmt.Errorf("floor: scenario %s has no steps or channels to price", e.Name)
		}
		rec.Scenario = e.Name
		rec.RecordsPerSec = sc.Steps[0].Rate
		rec.SubscribersPerRecord = float64(sc.Conns*sc.SubsPerConn) / float64(sc.Channels)
		rec.DeliveriesPerSec = rec.RecordsPerSec * rec.SubscribersPerRecord
		return nil
	}
	return fmt.Errorf("floor: scenario %q is not in the file", rec.Spec.Scenario)
}

// readFloor loads an earlier run's floor.json; nil when that run had none.
func readFloor(dir string) (*floorRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, floorFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read floor: %w", err)
	}
	var rec floorRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("floor %s: %w", dir, err)
	}
	return &rec, nil
}

// floorSection is the report's "Host write floor" section ("" without a probe).
func floorSection(rec *floorRecord) string {
	if rec == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("## Host write floor\n\n")
	if rec.Report == nil {
		fmt.Fprintf(&b, "Not measured: %s.\n\n", rec.Error)
		return b.String()
	}
	rep := rec.Report
	writer := "writer not pinned (CPUs " + rep.WriterCPUs + ")"
	if rec.WriterCPUs != "" {
		writer = "writer pinned to CPUs " + rec.WriterCPUs + " as ws-single is"
	}
	reader := "reader process not pinned"
	if rep.ReaderCPUs != "" {
		reader = "reader process on CPUs " + rep.ReaderCPUs + " (the generator's)"
	}
	fmt.Fprintf(&b, "`loadtest floor`: the CPU time (user + system, getrusage) one write(2) of %d B costs the writing process, round-robin over %d loopback connections, %s, %s. On loopback the writer's core also runs the receiver's TCP path, so this is what every single-message delivery costs the server before any work of its own.\n\n",
		rep.Payload, rep.Conns, writer, reader)
	b.WriteString("| writes/s | achieved/s | µs/write | share of a core | EAGAIN |\n|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Runs {
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.0f%% | %d |\n", num(float64(r.Rate)), num(r.Achieved), r.UsPerWrite, r.CoreShare*100, r.EAGAIN)
	}
	b.WriteString("\n")
	if run, ok := nearestRun(rep.Runs, rec.DeliveriesPerSec); ok && rec.Scenario != "" {
		fmt.Fprintf(&b, "The %s scenario's deliveries (%s records/s × %s subscribers per record) are %s single-message writes/s: at %.2f µs/write (measured at %s/s) they cost %.2f core here in the kernel alone.\n\n",
			rec.Scenario, num(rec.RecordsPerSec), trimFloat(rec.SubscribersPerRecord), num(rec.DeliveriesPerSec),
			run.UsPerWrite, num(float64(run.Rate)), rec.DeliveriesPerSec*run.UsPerWrite/1e6)
	}
	return b.String()
}

// nearestRun is the run whose rate is closest to want (the higher on a tie).
func nearestRun(runs []floor.RateFigures, want float64) (floor.RateFigures, bool) {
	var best floor.RateFigures
	found := false
	for _, r := range runs {
		if r.Writes == 0 {
			continue
		}
		d, bd := abs(float64(r.Rate)-want), abs(float64(best.Rate)-want)
		if !found || d < bd || (d == bd && r.Rate > best.Rate) {
			best, found = r, true
		}
	}
	return best, found
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// trimFloat prints whole numbers without decimals (100) and others with two (0.80).
func trimFloat(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// writeFloorJSON writes floor.json into the run's JSON directory.
func writeFloorJSON(dir string, rec *floorRecord) error {
	if rec == nil {
		return nil
	}
	return writeJSON(filepath.Join(dir, floorFile), rec)
}
