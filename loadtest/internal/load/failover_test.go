package load

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
)

// failoverRun runs a group of 20 A clients and 5 standby clients against instances A and
// B while records are published, ends A with end (after which the test may change B),
// waits for every resume, publishes a little longer and returns the group's result and
// the run's figures, settled against what was published.
func failoverRun(t *testing.T, signal string, setupA, setupB func(*fakeInstance), end func(a *fakeInstance)) (*GroupResult, *Result) {
	t.Helper()
	log := newFakeLog()
	a := newFakeInstance(t, log, setupA)
	b := newFakeInstance(t, log, setupB)
	sc := testScenario(a.url())
	sc.Mode = ModeBroadcast
	sc.Conns = 20
	sc.Channels, sc.SubsPerConn = 4, 2
	sc.Steps = []Step{{Rate: 100, Duration: Duration(time.Minute)}}
	sc.Failover = &Failover{Signal: signal, URL: b.url(), Standby: 5, At: Duration(time.Second),
		Window: Duration(200 * time.Millisecond), Deadline: Duration(10 * time.Second)}
	g, err := newGroup(Plan{Scenario: sc, From: 0, To: sc.Clients()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	stop := make(chan struct{})
	res := make(chan *GroupResult, 1)
	go func() { res <- g.run(ctx, stop, func(Progress) {}) }()

	// As the bench does: records only once every client is subscribed, all of which
	// every subscriber must get.
	waitFor(t, "every client subscribed", func() bool { return g.subscribed.Load() == int64(sc.Clients()) })
	pubStop, pubDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-pubStop:
				return
			case <-tick.C:
				log.publish(sc.ChannelName(i % sc.Channels))
			}
		}
	}()
	time.Sleep(600 * time.Millisecond) // more than two latency slots before A's end
	death := time.Now()
	end(a)
	waitFor(t, "every A client resumed", func() bool { return g.resumed.Load() == int64(sc.Conns) })
	time.Sleep(100 * time.Millisecond)
	close(pubStop)
	<-pubDone
	time.Sleep(200 * time.Millisecond) // the last records' delivery
	close(stop)
	gr := <-res

	r := &Result{Scenario: sc, StepsRun: 1}
	r.fill([]*GroupResult{gr}, log.producedCopy())
	r.Failover = failoverFigures(sc.Failover, death, death.Add(-time.Second), mergeFailover([]*GroupResult{gr}), sc.Failover.Window.D())
	r.judge()
	return gr, r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFailoverKillResumesWithoutLoss(t *testing.T) {
	gr, r := failoverRun(t, SignalKill, nil, nil, func(a *fakeInstance) { a.end(a.kill) })
	f := r.Failover
	if f.Clients != 20 || f.Standby != 5 || f.Recovered["memory"] != 20 || f.Resumes != 20 {
		t.Fatalf("failover %+v, want 20 A clients, 5 standby, 20 resumes recovered from memory", f)
	}
	if p := f.Problem(); p != "" {
		t.Errorf("problem %q, want none", p)
	}
	if sumMap(f.Left) != 20 || f.Left["close_1001_shutdown"] != 0 {
		t.Errorf("A connections ended %v, want 20, none by a drain's close", f.Left)
	}
	if f.DrainingLines != 0 || f.ReconnectDelay.MaxMs > 200 {
		t.Errorf("draining lines %d, reconnect delay max %.0fms: want none and under the 200ms window", f.DrainingLines, f.ReconnectDelay.MaxMs)
	}
	if f.Replayed != f.ReplayReceived {
		t.Errorf("replayed %d by the server, %d read by the clients before their recovered lines", f.Replayed, f.ReplayReceived)
	}
	if f.RecoveredAfter.Count != 20 || f.LastRecoveredSeconds <= 0 || f.ReplayWindowSeconds <= 0 {
		t.Errorf("recovered after %+v, last %.3fs, window %.3fs", f.RecoveredAfter, f.LastRecoveredSeconds, f.ReplayWindowSeconds)
	}
	if f.StandbyBefore.Count == 0 || f.StandbyStorm.Count == 0 {
		t.Errorf("standby latencies before %d, storm %d: want both measured", f.StandbyBefore.Count, f.StandbyStorm.Count)
	}
	if !r.Loss.OK || r.Loss.Lost != 0 || r.Loss.Duplicates != 0 || r.Loss.OutOfOrder != 0 {
		t.Errorf("loss %+v, want OK", r.Loss)
	}
	// Every A client's channels count, across the reconnect.
	var subs int64
	for _, c := range gr.Channels {
		subs += c.Subscribers
	}
	if subs != 25*2 {
		t.Errorf("%d subscriptions accounted, want 50", subs)
	}
}

func TestFailoverDrainWaitsTheDrainingDelay(t *testing.T) {
	_, r := failoverRun(t, SignalTerm, func(a *fakeInstance) { a.drainAfter = 150 * time.Millisecond }, nil,
		func(a *fakeInstance) { a.end(a.drain) })
	f := r.Failover
	if f.DrainingLines != 20 || f.Left["close_1001_shutdown"] != 20 {
		t.Fatalf("draining lines %d, ended %v: want 20 drained with 1001 shutdown", f.DrainingLines, f.Left)
	}
	if d := f.ReconnectDelay; d.Count != 20 || d.P50Ms < 100 || d.MaxMs > 160 {
		t.Errorf("reconnect delay %+v, want about the draining line's 150ms", f.ReconnectDelay)
	}
	if f.Recovered["memory"] != 20 || !r.Loss.OK {
		t.Errorf("recovered %v, loss %+v: want 20 recovered, no loss", f.Recovered, r.Loss)
	}
}

func TestFailoverCountsWhatTheServerGetsWrong(t *testing.T) {
	t.Run("duplicated replay", func(t *testing.T) {
		_, r := failoverRun(t, SignalKill, nil, func(b *fakeInstance) { b.dupReplay = true }, func(a *fakeInstance) { a.end(a.kill) })
		if r.Loss.Duplicates == 0 || r.Loss.OK {
			t.Errorf("loss %+v, want the replayed duplicates counted and the run failed", r.Loss)
		}
	})
	t.Run("not recovered", func(t *testing.T) {
		_, r := failoverRun(t, SignalKill, nil, func(b *fakeInstance) { b.notRecovered = "out_of_retention" }, func(a *fakeInstance) { a.end(a.kill) })
		f := r.Failover
		if f.NotRecovered["out_of_retention"] != 20 || !strings.Contains(f.Problem(), "20 resumes not recovered") {
			t.Errorf("not recovered %v, problem %q", f.NotRecovered, f.Problem())
		}
		if r.Loss.OK || !strings.Contains(r.LossLine(), "not recovered") {
			t.Errorf("loss line %q, want a failure naming the resumes", r.LossLine())
		}
	})
}

func TestFailoverFiguresSplitStandbyLatencyAtDeath(t *testing.T) {
	t.Parallel()
	death := time.Unix(100, int64(100*time.Millisecond)) // inside a slot, not on its edge
	slot := func(at time.Time, ms int64) (int64, *latency.Histogram) {
		h := latency.New()
		h.RecordMicros(ms * 1000)
		return at.UnixNano() / slotNs, h
	}
	g := &GroupFailover{Clients: 2, SlotNs: slotNs, Slots: map[int64]*latency.Histogram{},
		Done: []ResumeSpan{
			{death.Add(800 * time.Millisecond).UnixNano(), death.Add(time.Second).UnixNano()},
			{death.Add(900 * time.Millisecond).UnixNano(), death.Add(1100 * time.Millisecond).UnixNano()},
			{death.Add(2 * time.Second).UnixNano(), death.Add(3 * time.Second).UnixNano()},
		},
		LeftNs:        []int64{death.Add(-time.Second).UnixNano(), death.Add(time.Millisecond).UnixNano()},
		FirstResumeNs: death.Add(500 * time.Millisecond).UnixNano(), Replayed: 500}
	for _, s := range []struct {
		at time.Time
		ms int64
	}{{death.Add(-2 * time.Second), 5}, {death.Add(-100 * time.Millisecond), 6}, {death.Add(time.Second), 50}, {death.Add(5 * time.Second), 7}} {
		k, h := slot(s.at, s.ms)
		g.Slots[k] = h
	}
	f := failoverFigures(&Failover{Signal: SignalKill}, death, death.Add(-5*time.Second), g, 2*time.Second)
	if f.StandbyBefore.Count != 1 || f.StandbyBefore.MaxMs > 5.1 {
		t.Errorf("before %+v, want the 5ms slot only (the slot across the death counts in the storm)", f.StandbyBefore)
	}
	if f.StandbyStorm.Count != 2 || f.StandbyStorm.MaxMs < 49 {
		t.Errorf("storm %+v, want the 6ms and 50ms slots", f.StandbyStorm)
	}
	if f.StandbyAfter.Count != 1 {
		t.Errorf("after %+v, want the 7ms slot", f.StandbyAfter)
	}
	if f.RecoveredAfter.Count != 3 || f.LastRecoveredSeconds != 3 || f.StormSeconds != 3 || f.AtSeconds != 5 {
		t.Errorf("last recovered %vs storm %vs at %vs, want 3, 3, 5", f.LastRecoveredSeconds, f.StormSeconds, f.AtSeconds)
	}
	if f.ReplayWindowSeconds != 2.5 || f.ReplayPerSec != 200 {
		t.Errorf("replay window %vs at %v/s, want 2.5s, 200/s", f.ReplayWindowSeconds, f.ReplayPerSec)
	}
	// Resumes under way: 0.8-1.1s and 2-3s after the death, 1.3s.
	if math.Abs(f.ReplayBusySeconds-1.3) > 1e-9 || math.Abs(f.ReplayBusyPerSec-500/1.3) > 1e-6 {
		t.Errorf("replay busy %vs at %v/s, want 1.3s, %v/s", f.ReplayBusySeconds, f.ReplayBusyPerSec, 500/1.3)
	}
	if f.LeftEarly != 1 || !strings.Contains(f.Problem(), "1 A connections ended before A did") {
		t.Errorf("left early %d, problem %q", f.LeftEarly, f.Problem())
	}
}

func TestFailoverValidate(t *testing.T) {
	t.Parallel()
	ok := func() Scenario {
		sc := testScenario("ws://127.0.0.1:3002/ws")
		sc.Mode, sc.Brokers = ModeBroadcast, []string{"127.0.0.1:9092"}
		sc.Steps = []Step{{Rate: 100, Duration: Duration(10 * time.Second)}}
		sc.Failover = &Failover{Signal: SignalKill, URL: "ws://127.0.0.1:3003/ws", Standby: 1, At: Duration(time.Second), Deadline: Duration(time.Second)}
		return sc
	}
	tests := []struct {
		name   string
		mutate func(*Scenario)
		ok     bool
	}{
		{"valid", func(*Scenario) {}, true},
		{"bad signal", func(s *Scenario) { s.Failover.Signal = "SIGINT" }, false},
		{"no B", func(s *Scenario) { s.Failover.URL = "" }, false},
		{"remote B", func(s *Scenario) { s.Failover.URL = "ws://10.0.0.1:1/ws" }, false},
		{"two steps", func(s *Scenario) { s.Steps = append(s.Steps, s.Steps[0]) }, false},
		{"at past the step", func(s *Scenario) { s.Failover.At = Duration(time.Minute) }, false},
		{"connect mode", func(s *Scenario) { s.Mode = ModeConnect }, false},
		{"slow consumers", func(s *Scenario) { s.SlowFraction = 0.1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := ok()
			tt.mutate(&sc)
			if err := sc.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	sc := ok()
	sc.Conns = 20000
	sc.AutoPlace(15000, 25000)
	if sc.Clients() != 20001 || sc.Workers != 2 || len(sc.SourceAddrs) != 2 {
		t.Errorf("clients %d workers %d sources %v, want 20001 clients over 2 workers and 2 sources for 40001 dials", sc.Clients(), sc.Workers, sc.SourceAddrs)
	}
}

func TestPositions(t *testing.T) {
	t.Parallel()
	var ps positions
	ps.raise([]byte("trades"), 1, 10)
	ps.raise([]byte("trades"), 1, 7)
	ps.raise([]byte("trades"), 0, -1)
	if err := ps.raiseWire("tickers", map[string]int64{"3": 5}); err != nil {
		t.Fatal(err)
	}
	if err := ps.raiseWire("trades", map[string]int64{"0": 4}); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(ps.wire())
	if want := `{"tickers":{"3":5},"trades":{"0":4,"1":10}}`; string(got) != want {
		t.Errorf("positions %s, want %s (offsets only rise)", got, want)
	}
	if err := ps.raiseWire("trades", map[string]int64{"x": 1}); err == nil {
		t.Error("a partition that is not a number was accepted")
	}
	for line, want := range map[string]string{
		`{"op":"mark","topic":"t","positions":{}}`: "mark",
		`{"id":"x","op":"recovered"}`:              "recovered",
		`{"op":1}`:                                 "",
	} {
		if got := string(lineOp([]byte(line))); got != want {
			t.Errorf("lineOp(%s) = %q, want %q", line, got, want)
		}
	}
}

// TestGroupFailoverTravels checks a worker's failover accounting survives its JSON line
// and merges with another group's.
func TestGroupFailoverTravels(t *testing.T) {
	t.Parallel()
	h := latency.New()
	h.RecordMicros(1500)
	g := &GroupFailover{Clients: 3, Left: map[string]int64{"eof": 3}, Recovered: map[string]int64{"memory": 3},
		Done: []ResumeSpan{{4, 5}, {4, 6}, {5, 7}}, FirstResumeNs: 4, Slots: map[int64]*latency.Histogram{42: h}, SlotNs: slotNs,
		Delay: latency.New(), Handshake: latency.New(), Resume: h}
	b, err := json.Marshal(wireMsg{Result: &GroupResult{Failover: g}})
	if err != nil {
		t.Fatal(err)
	}
	var m wireMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	other := &GroupFailover{Clients: 1, Recovered: map[string]int64{"kafka": 1}, Done: []ResumeSpan{{2, 3}}, FirstResumeNs: 2,
		Slots: map[int64]*latency.Histogram{42: h}, SlotNs: slotNs}
	merged := mergeFailover([]*GroupResult{m.Result, {}, {Failover: other}})
	if merged.Clients != 4 || merged.Recovered["memory"] != 3 || merged.Recovered["kafka"] != 1 || len(merged.Done) != 4 ||
		merged.FirstResumeNs != 2 || merged.Slots[42].Count() != 2 || merged.Resume.Count() != 1 {
		t.Errorf("merged %+v", merged)
	}
}
