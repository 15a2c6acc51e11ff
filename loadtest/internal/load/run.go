package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/rusage"
	"github.com/adred-codev/ws_poc/loadtest/internal/scrape"
	"github.com/adred-codev/ws_poc/loadtest/internal/sequence"
)

// scrapeTimeout bounds one /metrics request.
const scrapeTimeout = 5 * time.Second

// redacted replaces the scenario's token in a Result.
const redacted = "redacted"

// orchestrator runs one scenario: groups, producer, progress, scrapes.
type orchestrator struct {
	workerCmd func() (string, []string, error)
	sc        *Scenario
	stderr    io.Writer
	events    chan event
	groups    []groupState
	http      *http.Client

	// live figures, updated from progress events
	second      *latency.Histogram // latencies since the last progress line
	stepLive    *latency.Histogram // latencies since the current step began
	lastPrinted time.Time
	lastRecv    int64
	start       time.Time
	phase       string
	marks       []stepMark // one per step run

	// kill ends instance A in a failover run; death is when it did, stepStart when the
	// publishing step began.
	kill      func(context.Context) (time.Time, error)
	death     time.Time
	stepStart time.Time
}

type groupState struct {
	last   Progress
	result *GroupResult
	err    error
	done   bool
}

// Run executes a scenario and returns its figures. Progress goes to stderr once a second.
// Worker processes, when the scenario asks for them, are this executable run as `worker`.
func Run(ctx context.Context, sc Scenario, stderr io.Writer) (*Result, error) {
	return run(ctx, sc, stderr, selfWorker)
}

// RunFailover executes a failover scenario (sc.Failover set): kill ends instance A when
// the scenario says and returns when it did (the moment A's end is timed from).
func RunFailover(ctx context.Context, sc Scenario, stderr io.Writer, kill func(context.Context) (time.Time, error)) (*Result, error) {
	return runWith(ctx, sc, stderr, selfWorker, kill)
}

// selfWorker is the command line of a worker process: this executable, `worker`.
func selfWorker() (string, []string, error) {
	exe, err := os.Executable()
	return exe, []string{"worker"}, err
}

func run(ctx context.Context, sc Scenario, stderr io.Writer, workerCmd func() (string, []string, error)) (*Result, error) {
	return runWith(ctx, sc, stderr, workerCmd, nil)
}

func runWith(ctx context.Context, sc Scenario, stderr io.Writer, workerCmd func() (string, []string, error), kill func(context.Context) (time.Time, error)) (*Result, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if (sc.Failover != nil) != (kill != nil) {
		return nil, errors.New("a failover scenario runs with a hook that ends instance A, and only it")
	}
	o := &orchestrator{
		kill:      kill,
		workerCmd: workerCmd,
		sc:        &sc,
		stderr:    stderr,
		events:    make(chan event),
		http:      &http.Client{Timeout: scrapeTimeout},
		second:    latency.New(),
		stepLive:  latency.New(),
		start:     time.Now(),
	}
	cpu0, err := rusage.Self()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, sc.MaxTime.D())
	defer cancel()

	res := &Result{Scenario: sc, Started: o.start.UTC()}
	if sc.Token != "" {
		res.Scenario.Token = redacted // figures are shared; a token is a credential until it expires
	}
	srv := &ServerFigures{}
	before, scrapeErr := o.scrape(ctx)
	srv.note(scrapeErr)

	var pr *producer
	if sc.Mode == ModeBroadcast {
		if pr, err = newProducer(&sc); err != nil {
			return nil, err
		}
		if err := pr.warmUp(ctx); err != nil {
			pr.close()
			return nil, err
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if err := o.startGroups(ctx, stop, &wg); err != nil {
		close(stop)
		o.collect()
		wg.Wait()
		if pr != nil {
			pr.close()
		}
		return nil, err
	}

	o.phase = "connect"
	o.pump(ctx, nil, 0, o.allReady)
	o.print()
	peak, scrapeErr := o.scrape(ctx)
	srv.note(scrapeErr)

	loadCPU0, loadStart := o.cpuNow(), time.Now()
	switch sc.Mode {
	case ModeConnect:
		o.phase = "hold"
		o.pump(ctx, nil, sc.Hold.D(), nil)
	case ModeBroadcast:
		if sc.Failover != nil {
			res.StepsRun, res.StoppedEarly = o.runFailover(ctx, pr)
		} else {
			res.StepsRun, res.StoppedEarly = o.runSteps(ctx, pr)
		}
		o.phase = "drain"
		o.pump(ctx, nil, sc.Drain.D(), o.quiet(drainQuiet))
	}

	loadCPU, loadWall := o.cpuNow().Sub(loadCPU0), time.Since(loadStart)
	o.print()
	after, scrapeErr := o.scrape(ctx)
	srv.note(scrapeErr)

	close(stop)
	o.phase = "close"
	o.collect()
	wg.Wait()
	var produced map[string][]int64
	if pr != nil {
		pr.close()
		produced = pr.produced()
		res.ProduceErrors = pr.errs
		if pr.lastErr != nil {
			res.ProduceError = pr.lastErr.Error()
		}
	}
	var errs []error
	for _, g := range o.groups {
		if g.err != nil {
			errs = append(errs, g.err)
		}
	}
	if len(errs) > 0 && !anyResult(o.groups) {
		return nil, errors.Join(errs...)
	}
	for _, e := range errs {
		res.GroupErrors = append(res.GroupErrors, e.Error())
	}

	cpu1, err := rusage.Self()
	if err != nil {
		return nil, err
	}
	genCPU := cpu1.Sub(cpu0)
	for _, g := range o.groups {
		if g.result != nil {
			genCPU = genCPU.Add(g.result.CPU)
		}
	}
	res.WallSeconds = time.Since(o.start).Seconds()
	if sc.Failover != nil {
		// The failover step ends when its clients have resumed: its length is the wall
		// clock's, not the duration that bounds it.
		for _, m := range o.marks {
			res.wall = append(res.wall, m.wall.Seconds())
		}
	}
	res.fill(o.results(), produced)
	for i := range res.Steps {
		if i < len(o.marks) {
			res.Steps[i].applyMark(o.marks[i])
		}
	}
	srv.fill(before, peak, after, res)
	res.Server = srv
	res.Generator = generatorFigures(genCPU, time.Since(o.start), loadCPU, loadWall, srv, &sc)
	if sc.Failover != nil {
		res.Failover = failoverFigures(sc.Failover, o.death, o.stepStart, mergeFailover(o.results()), sc.Failover.Window.D())
	}
	if sc.ThrottleFraction > 0 {
		from, to := o.publishing()
		res.Throttled = throttledFigures(&sc, o.results(), from, to)
	}
	res.judge()
	return res, ctx.Err()
}

func anyResult(gs []groupState) bool {
	for _, g := range gs {
		if g.result != nil {
			return true
		}
	}
	return false
}

func (o *orchestrator) results() []*GroupResult {
	var out []*GroupResult
	for _, g := range o.groups {
		if g.result != nil {
			out = append(out, g.result)
		}
	}
	return out
}

// startGroups splits the connections over the groups and starts them.
func (o *orchestrator) startGroups(ctx context.Context, stop <-chan struct{}, wg *sync.WaitGroup) error {
	n := max(o.sc.Workers, 1)
	o.groups = make([]groupState, n)
	per := (o.sc.Clients() + n - 1) / n
	for i := range n {
		plan := Plan{Scenario: *o.sc, From: min(i*per, o.sc.Clients()), To: min((i+1)*per, o.sc.Clients()), RampRate: o.sc.RampRate / float64(n)}
		if o.sc.Workers <= 1 {
			startLocal(ctx, i, plan, stop, o.events, wg)
			continue
		}
		if err := startProcess(ctx, i, plan, o.workerCmd, stop, o.events, wg, o.stderr); err != nil {
			// Groups already started must still be collected by the caller.
			for j := i; j < n; j++ {
				o.groups[j].done = true
				o.groups[j].err = err
			}
			return err
		}
	}
	return nil
}

// pump handles events and prints progress until done is closed, d passes (when > 0), cond
// returns true (when set), or ctx ends. With neither d nor cond nor done it returns at once.
func (o *orchestrator) pump(ctx context.Context, done <-chan struct{}, d time.Duration, cond func() bool) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	} else if cond == nil && done == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if cond != nil && cond() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-timeout:
			return
		case e := <-o.events:
			o.apply(e)
		case <-tick.C:
			o.print()
		}
	}
}

// drainQuiet ends the drain early: no message for this long means the backlog is through.
// Progress arrives once a second per group, so shorter would mistake a gap for the end.
const drainQuiet = 2500 * time.Millisecond

// quiet returns a condition that holds once the received count has not moved for d.
func (o *orchestrator) quiet(d time.Duration) func() bool {
	last, since := o.totals().Received, time.Now()
	return func() bool {
		if r := o.totals().Received; r != last {
			last, since = r, time.Now()
		}
		return time.Since(since) >= d
	}
}

// collect handles events until every group has delivered its result (or failed).
func (o *orchestrator) collect() {
	for !o.allDone() {
		o.apply(<-o.events)
	}
}

func (o *orchestrator) apply(e event) {
	g := &o.groups[e.group]
	switch {
	case e.progress != nil:
		g.last = *e.progress
		if e.progress.Interval != nil {
			o.second.Merge(e.progress.Interval)
			o.stepLive.Merge(e.progress.Interval)
		}
	default:
		g.result, g.err, g.done = e.result, e.err, true
	}
}

func (o *orchestrator) allReady() bool {
	for _, g := range o.groups {
		if !g.last.Ready && !g.done {
			return false
		}
	}
	return true
}

func (o *orchestrator) allDone() bool {
	for _, g := range o.groups {
		if !g.done {
			return false
		}
	}
	return true
}

func (o *orchestrator) totals() Progress {
	var t Progress
	for _, g := range o.groups {
		t.Connected += g.last.Connected
		t.Subscribed += g.last.Subscribed
		t.Failed += g.last.Failed
		t.Dropped += g.last.Dropped
		t.Received += g.last.Received
		t.Awaiting += g.last.Awaiting
		t.Left += g.last.Left
		t.Resumed += g.last.Resumed
	}
	return t
}

// print writes one progress line: connections, messages/s, p99 of the last second, errors.
func (o *orchestrator) print() {
	now := time.Now()
	t := o.totals()
	secs := now.Sub(o.lastPrinted).Seconds()
	if o.lastPrinted.IsZero() {
		secs = now.Sub(o.start).Seconds()
	}
	rate := float64(t.Received-o.lastRecv) / secs
	p99 := "-"
	if o.second.Count() > 0 {
		p99 = fmt.Sprintf("%.1fms", float64(o.second.Quantile(0.99).Microseconds())/1000)
	}
	fo := ""
	if o.sc.Failover != nil {
		fo = fmt.Sprintf(" | A clients left %d resumed %d awaiting %d", t.Left, t.Resumed, t.Awaiting)
	}
	fmt.Fprintf(o.stderr, "[%5.1fs %-8s] conns %d/%d subscribed %d | msgs/s %.0f p99 %s | failed %d dropped %d%s\n",
		now.Sub(o.start).Seconds(), o.phase, t.Connected, o.sc.Clients(), t.Subscribed, rate, p99, t.Failed, t.Dropped, fo)
	o.second.Reset()
	o.lastPrinted, o.lastRecv = now, t.Received
}

func (o *orchestrator) scrape(ctx context.Context) (scrape.Figures, error) {
	if o.sc.MetricsURL == "none" {
		return scrape.Figures{}, errNoMetrics
	}
	s, err := scrape.Fetch(ctx, o.http, o.sc.MetricsURL)
	if err != nil {
		return scrape.Figures{}, err
	}
	return s.Figures(), nil
}

var errNoMetrics = errors.New("metrics scraping disabled")

// mergeChannels folds every group's per-channel counts together.
func mergeChannels(rs []*GroupResult) map[string]*sequence.Counts {
	out := map[string]*sequence.Counts{}
	for _, r := range rs {
		for name, c := range r.Channels {
			m := out[name]
			if m == nil {
				m = &sequence.Counts{}
				out[name] = m
			}
			m.Merge(*c)
		}
	}
	return out
}

// cpuNow is the generator's CPU so far: this process plus every worker's last report.
func (o *orchestrator) cpuNow() rusage.CPU {
	cpu, _ := rusage.Self() // getrusage(RUSAGE_SELF) cannot fail with a valid pointer
	for _, g := range o.groups {
		cpu = cpu.Add(g.last.CPU)
	}
	return cpu
}

// generatorFigures computes the generator's CPU shares. Cores is what the generator may
// run on (its CPU affinity: runtime.NumCPU), machine share is over every host core.
func generatorFigures(cpu rusage.CPU, wall time.Duration, loadCPU rusage.CPU, loadWall time.Duration, srv *ServerFigures, sc *Scenario) GeneratorFigures {
	cores := runtime.NumCPU()
	host := rusage.HostCores()
	g := GeneratorFigures{
		CPUSeconds:  cpu.Total().Seconds(),
		Cores:       cores,
		HostCores:   host,
		Share:       rusage.Share(cpu.Total(), wall, cores),
		LoadShare:   rusage.Share(loadCPU.Total(), loadWall, cores),
		Workers:     max(sc.Workers, 1),
		SourceAddrs: sc.SourceAddrs,
	}
	machine := g.CPUSeconds
	if srv.Scraped {
		machine += srv.Delta.CPUSeconds
	}
	g.MachineShare = machine / (wall.Seconds() * float64(host))
	// The generator is the bottleneck suspect when, while the load ran, it used nearly all
	// of the cores it may run on.
	g.Saturated = g.LoadShare >= 0.9
	return g
}
