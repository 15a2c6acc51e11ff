package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// Connection budgets, as `loadtest connect` uses them (see load.AutoPlace).
const (
	connsPerWorker = 15000
	connsPerSource = 25000
)

// record is one run: a scenario against a variant.
type record struct {
	Entry   Entry   `json:"entry"`
	Variant Variant `json:"variant"`
	// Repeat is which run of the scenario this is against the variant (1-based).
	Repeat int          `json:"repeat,omitempty"`
	Result *load.Result `json:"result"`
	// ServerMaxRSS is the server process's peak RSS in bytes from its start until the
	// load's clients have gone (their mass disconnect included), from the kernel (VmHWM):
	// the true peak, where the scraped RSS is one sample.
	ServerMaxRSS float64 `json:"server_max_rss,omitempty"`
	// Failover is what the bench noted of a failover run's instances (ServerMaxRSS is
	// instance B's).
	Failover *failoverRecord `json:"failover,omitempty"`
	Error    string          `json:"error,omitempty"`
	Row      Row             `json:"row"`
}

// Run parses the flags and runs the benchmark.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenarios := fs.String("scenarios", "bench/scenarios.json", "scenario file")
	outDir := fs.String("out-dir", "bench/results", "where <date>.md, <date>.svg and <date>/*.json go")
	binDir := fs.String("bin", "bin", "directory holding the server binaries")
	smoke := fs.Bool("smoke", false, "run each scenario's short smoke version")
	noPin := fs.Bool("no-pin", false, "do not pin the variants to their CPUs (taskset); for smoke runs anywhere")
	only := fs.String("only", "", "comma-separated scenario names to run (default all)")
	variants := fs.String("variants", "", "comma-separated variant names to run (default all)")
	date := fs.String("date", time.Now().UTC().Format("2006-01-02"), "name of the result files")
	logDir := fs.String("log-dir", "", "server and broker logs (default a temporary directory)")
	reportOnly := fs.Bool("report-only", false, "run nothing: rebuild <date>.md and .svg from the JSON of an earlier run")
	repeat := fs.Int("repeat", 0, "runs of each scenario per variant, interleaved; the ratio table compares medians (0 = the scenario file's repeat; --smoke: 1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	f, err := readFile(*scenarios)
	if err != nil {
		return err
	}
	if *repeat < 0 {
		return fmt.Errorf("repeat %d: need >= 0", *repeat)
	}
	switch {
	case *repeat > 0:
		f.Repeat = *repeat
	case *smoke:
		f.Repeat = 1 // smoke figures are meaningless: one run proves the scenarios work
	}
	jsonDir := filepath.Join(*outDir, *date)
	if *reportOnly {
		records, err := readRecords(f, jsonDir)
		if err != nil {
			return err
		}
		fl, err := readFloor(jsonDir)
		if err != nil {
			return err
		}
		return writeReport(f, records, fl, *smoke, *date, *outDir, stdout)
	}
	if *logDir == "" {
		if *logDir, err = os.MkdirTemp("", "ws_poc-bench-"); err != nil {
			return fmt.Errorf("log dir: %w", err)
		}
	}
	for _, d := range []string{jsonDir, *logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	b := &bencher{
		file: f, bin: *binDir, smoke: *smoke, noPin: *noPin, logDir: *logDir, stderr: stderr,
		only: splitSet(*only), variants: splitSet(*variants),
	}
	fmt.Fprintf(stderr, "bench: logs in %s\n", *logDir)
	loadBefore := loadAvg()
	var fl *floorRecord
	if f.Floor != nil {
		// First, on a host with nothing of ours running yet.
		fl = b.runFloor(ctx)
		if err := writeFloorJSON(jsonDir, fl); err != nil {
			return err
		}
	}
	records, runErr := b.run(ctx)
	f.Notes = append(f.Notes, fmt.Sprintf("Host load average (1, 5, 15 min) before the run: %s; after: %s. Other work on the host competes with the bench: compare runs only on a quiet machine.", loadBefore, loadAvg()))
	for _, r := range records {
		r.Row = row(r)
		path := filepath.Join(jsonDir, recordFile(r.Variant.Name, r.Entry.Name, r.Repeat))
		if err := writeJSON(path, r); err != nil {
			return err
		}
	}
	return errors.Join(runErr, writeReport(f, records, fl, *smoke, *date, *outDir, stdout))
}

// writeReport writes <date>.md and <date>.svg and returns the bench's verdict.
func writeReport(f *File, records []*record, fl *floorRecord, smoke bool, date, outDir string, stdout io.Writer) error {
	rep := buildReport(f, records, smoke, date)
	rep.floor = fl
	mdPath := filepath.Join(outDir, date+".md")
	svgPath := filepath.Join(outDir, date+".svg")
	rep.SVG = filepath.Base(svgPath)
	rep.JSONDir = date
	if err := os.WriteFile(mdPath, []byte(rep.markdown()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(svgPath, []byte(chart(rep)), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	fmt.Fprint(stdout, rep.markdownTable())
	if t := rep.failoverTable(); t != "" {
		fmt.Fprint(stdout, "\n"+t)
	}
	if t := rep.mobileTable(); t != "" {
		fmt.Fprint(stdout, "\n"+t)
	}
	fmt.Fprint(stdout, rep.authSections())
	fmt.Fprintf(stdout, "\nbench: report %s, chart %s, results %s/\n", mdPath, svgPath, filepath.Join(outDir, date))
	return rep.check()
}

// recordFile names a run's JSON: <variant>-<scenario>.json for the first run (as before
// repeats existed), <variant>-<scenario>-r<k>.json for the k-th.
func recordFile(variant, scenario string, repeat int) string {
	if repeat <= 1 {
		return variant + "-" + scenario + ".json"
	}
	return fmt.Sprintf("%s-%s-r%d.json", variant, scenario, repeat)
}

// readRecords loads an earlier run's JSON, in the scenario file's order, every repeat.
func readRecords(f *File, dir string) ([]*record, error) {
	var records []*record
	for _, e := range f.Scenarios {
		for _, v := range f.Variants {
			for k := 1; ; k++ {
				b, err := os.ReadFile(filepath.Join(dir, recordFile(v.Name, e.Name, k)))
				if errors.Is(err, os.ErrNotExist) {
					break
				}
				if err != nil {
					return nil, fmt.Errorf("read results: %w", err)
				}
				var r record
				if err := json.Unmarshal(b, &r); err != nil {
					return nil, fmt.Errorf("results %s/%s run %d: %w", v.Name, e.Name, k, err)
				}
				r.Repeat = max(r.Repeat, 1)
				records = append(records, &r)
			}
		}
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("no results in %s", dir)
	}
	return records, nil
}

type bencher struct {
	file     *File
	bin      string
	smoke    bool
	noPin    bool
	logDir   string
	stderr   io.Writer
	only     map[string]bool
	variants map[string]bool
	broker   string
}

func (b *bencher) run(ctx context.Context) ([]*record, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find executable: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b.broker = "127.0.0.1:" + itoa(port)
	blog, err := os.Create(filepath.Join(b.logDir, "broker.log"))
	if err != nil {
		return nil, fmt.Errorf("broker log: %w", err)
	}
	defer blog.Close()
	parts := max(b.file.Partitions, 1)
	broker, err := start("broker", "", []string{exe, "dev", "--broker", b.broker, "--rate", "0", "--partitions", itoa(parts)}, nil, blog)
	if err != nil {
		return nil, err
	}
	defer broker.stop(10 * time.Second)
	if err := waitTCP(ctx, b.broker, broker, 20*time.Second); err != nil {
		return nil, err
	}
	var variants []Variant
	for _, v := range b.file.Variants {
		if len(b.variants) == 0 || b.variants[v.Name] {
			variants = append(variants, v)
		}
	}
	var records []*record
	var errs []error
	n := 0
	for _, e := range b.file.Scenarios {
		if len(b.only) > 0 && !b.only[e.Name] {
			continue
		}
		for k := 1; k <= max(b.file.Repeat, 1); k++ {
			for _, v := range turnOrder(variants, k) {
				if !v.runs(e) {
					continue
				}
				n++
				r := &record{Entry: e, Variant: v, Repeat: k}
				if e.Kind == KindFailover {
					r.Result, r.ServerMaxRSS, r.Failover, err = b.runFailover(ctx, e, v, n)
				} else {
					r.Result, r.ServerMaxRSS, err = b.runOne(ctx, e, v, n)
				}
				if err != nil {
					r.Error = err.Error()
					errs = append(errs, fmt.Errorf("%s/%s run %d: %w", v.Name, e.Name, k, err))
					fmt.Fprintf(b.stderr, "bench: %s/%s run %d: %v\n", v.Name, e.Name, k, err)
				}
				records = append(records, r)
				if ctx.Err() != nil {
					return records, errors.Join(append(errs, ctx.Err())...)
				}
			}
		}
	}
	return records, errors.Join(errs...)
}

// turnOrder is the order of the variants in the k-th run of a scenario: rotated by one
// each run, so every variant goes first as often as the others (the second run of a pair
// follows a server that has just stopped; which one does should not favour a variant).
func turnOrder(variants []Variant, k int) []Variant {
	if len(variants) == 0 {
		return nil
	}
	i := (k - 1) % len(variants)
	return append(slices.Clone(variants[i:]), variants[:i]...)
}

// runOne starts a fresh server, runs the scenario against it and stops it. With the result
// it returns the server's peak RSS in bytes (0 when the kernel did not say).
func (b *bencher) runOne(ctx context.Context, e Entry, v Variant, n int) (*load.Result, float64, error) {
	sc, err := b.scenario(e)
	if err != nil {
		return nil, 0, err
	}
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	addr := "127.0.0.1:" + itoa(port)
	env := b.serverEnv(e, v, addr)

	slog, err := os.Create(filepath.Join(b.logDir, v.Name+"-"+e.Name+".log"))
	if err != nil {
		return nil, 0, fmt.Errorf("server log: %w", err)
	}
	defer slog.Close()
	cpus := v.CPUs
	if b.noPin {
		cpus = ""
	}
	srv, err := start(v.Name, cpus, []string{filepath.Join(b.bin, v.Binary)}, env, slog)
	if err != nil {
		return nil, 0, err
	}
	if err := waitHTTP(ctx, "http://"+addr+"/readyz", srv, 30*time.Second); err != nil {
		_ = srv.stop(20 * time.Second)
		return nil, 0, err
	}

	sc.URL = "ws://" + addr + "/ws"
	sc.MetricsURL = ""
	b.place(&sc, n)
	if err := v.authorize(&sc, time.Now()); err != nil {
		_ = srv.stop(20 * time.Second)
		return nil, 0, err
	}
	fmt.Fprintf(b.stderr, "bench: %s/%s: %s\n", v.Name, e.Name, e.Description)
	res, runErr := load.Run(ctx, sc, &prefixWriter{w: b.stderr, prefix: v.Name + "/" + e.Name + " "})
	if res != nil {
		res.WriteTable(&prefixWriter{w: b.stderr, prefix: v.Name + "/" + e.Name + " | "})
	}
	// Before the stop (the process must still exist to be asked; its shutdown is not the
	// load's), after the clients left: a mass disconnect is part of what a server must hold.
	maxRSS, rssErr := srv.peakRSS()
	if rssErr != nil {
		fmt.Fprintf(b.stderr, "bench: %s/%s: %v\n", v.Name, e.Name, rssErr)
	}
	stopErr := srv.stop(30 * time.Second)
	return res, maxRSS, errors.Join(runErr, stopErr)
}

// scenario is entry e's load: the defaults, its fields and, with --smoke, its smoke fields.
func (b *bencher) scenario(e Entry) (load.Scenario, error) {
	var sc load.Scenario
	raw, err := merge(b.file.Defaults, e.Load)
	if err != nil {
		return sc, err
	}
	if b.smoke {
		if raw, err = merge(raw, e.Smoke); err != nil {
			return sc, err
		}
	}
	if err := json.Unmarshal(raw, &sc); err != nil {
		return sc, fmt.Errorf("scenario %s: %w", e.Name, err)
	}
	return sc, nil
}

// serverEnv is the environment of variant v's server of entry e listening on addr.
func (b *bencher) serverEnv(e Entry, v Variant, addr string) map[string]string {
	env := map[string]string{}
	for k, val := range b.file.ServerEnv {
		env[k] = val
	}
	for k, val := range v.ServerEnv {
		env[k] = val
	}
	for k, val := range e.ServerEnv {
		env[k] = val
	}
	if b.smoke {
		for k, val := range e.SmokeServerEnv {
			env[k] = val
		}
	}
	env["WS_ADDR"] = addr
	env["WS_KAFKA_BROKERS"] = b.broker
	env["WS_KAFKA_TOPICS"] = b.file.Topic
	return env
}

// place points the load at the broker and spreads the n-th run's dials over source
// addresses of its own: the previous run's closed sockets sit in TIME_WAIT on their ports
// for a minute, and one address has only ~28K of them.
func (b *bencher) place(sc *load.Scenario, n int) {
	sc.Brokers = []string{b.broker}
	sc.Topic = b.file.Topic
	for k := range (sc.Dials() + connsPerSource - 1) / connsPerSource {
		sc.SourceAddrs = append(sc.SourceAddrs, fmt.Sprintf("127.0.%d.%d", n%250+1, k+1))
	}
	sc.AutoPlace(connsPerWorker, connsPerSource)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func splitSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			m[p] = true
		}
	}
	return m
}

// prefixWriter prefixes every line written to w.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(b))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], " ")
}
