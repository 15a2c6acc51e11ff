package floor

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Run is `loadtest floor`: the probe by hand, figures as a table or, with --json, as the
// Report that `loadtest bench` reads.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loadtest floor [flags]  (pin the writer with taskset -c <cpus> loadtest floor ...)")
		fmt.Fprintln(stderr, "Measures the CPU time one write(2) to a loopback TCP socket costs the writing process,")
		fmt.Fprintln(stderr, "round-robin over --conns connections whose peers a child process reads.")
		fs.PrintDefaults()
	}
	conns := fs.Int("conns", DefaultConns, "loopback connections the writes go round-robin over (one descriptor each in both processes)")
	payload := fs.Int("payload", DefaultPayload, "bytes per write(2)")
	rates := fs.String("rate", "50000", "comma-separated write(2) calls per second, measured one after another")
	duration := fs.Duration("duration", DefaultDuration, "how long each rate runs")
	readerCPUs := fs.String("reader-cpus", "", "taskset CPU list of the reading process (default: not pinned)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	rs, err := parseRates(*rates)
	if err != nil {
		return err
	}
	rep, err := Measure(ctx, Config{
		Conns: *conns, Payload: *payload, Rates: rs, Duration: *duration,
		ReaderCPUs: *readerCPUs, Log: stderr,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("floor: encode report: %w", err)
		}
		return nil
	}
	return rep.WriteTable(stdout)
}

// WriteTable prints the report for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "loopback write floor: %d connections, %d B per write(2), writer CPUs %s, reader CPUs %s\n",
		r.Conns, r.Payload, orAll(r.WriterCPUs), orAll(r.ReaderCPUs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rate/s\tachieved/s\twrites\tshort\tEAGAIN\twall s\tCPU s\tµs/write\tshare of a core\t")
	for _, run := range r.Runs {
		fmt.Fprintf(tw, "%d\t%.0f\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.0f%%\t\n", run.Rate, run.Achieved, run.Writes, run.Short,
			run.EAGAIN, run.WallSeconds, run.CPU.Total().Seconds(), run.UsPerWrite, run.CoreShare*100)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("floor: write table: %w", err)
	}
	return nil
}

func orAll(cpus string) string {
	if cpus == "" {
		return "not pinned"
	}
	return cpus
}

func parseRates(s string) ([]int, error) {
	var rates []int
	for _, p := range strings.Split(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || r < 1 {
			return nil, fmt.Errorf("floor: rate %q: want positive integers separated by commas", p)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// ReaderMain is the hidden `loadtest floor-reader`, which Measure starts: the reading side of
// the probe. It ends when its stdin closes or --timeout passes.
func ReaderMain(ctx context.Context, args []string, _, stderr io.Writer) error {
	return readerMain(ctx, args, os.Stdin, stderr)
}

func readerMain(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor-reader", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg ReaderConfig
	fs.StringVar(&cfg.Addr, "addr", "", "the writer's listener")
	fs.IntVar(&cfg.Conns, "conns", 0, "connections to dial")
	fs.DurationVar(&cfg.Timeout, "timeout", time.Minute, "exit after this long even if stdin stays open")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("floor-reader takes only flags; it is started by loadtest floor")
	}
	return RunReader(ctx, cfg, stdin)
}
