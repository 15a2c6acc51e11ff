package load

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/sequence"
)

// workerEnv makes the test binary act as a worker process (see TestMain), so the
// multi-process path is tested with the real pipes and JSON-lines protocol.
const workerEnv = "LOADTEST_TEST_AS_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := RunWorker(ctx, os.Stdin, os.Stdout)
		cancel()
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func testWorkerCmd() (string, []string, error) {
	return os.Args[0], nil, nil
}

func TestConnectInProcess(t *testing.T) {
	srv := newFakeServer(t, 3)
	sc := testScenario(srv.url())
	res, err := run(testCtx(t), sc, io.Discard, testWorkerCmd)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Connections
	if c.Connected != 40 || c.Subscribed != 40 || c.Failed != 0 || c.Dropped != 0 {
		t.Fatalf("connections %+v, want 40 connected and subscribed, none failed", c)
	}
	if c.Handshake.Count != 40 || c.Subscribe.Count != 40 {
		t.Errorf("handshake n=%d subscribe n=%d, want 40 each", c.Handshake.Count, c.Subscribe.Count)
	}
	// 40 connections x 2 subscriptions x 3 messages.
	if res.Messages.Received != 240 || res.Messages.Latency.Count != 240 {
		t.Errorf("received %d (latency n=%d), want 240", res.Messages.Received, res.Messages.Latency.Count)
	}
	s := res.Server
	if !s.Scraped || s.Peak.Connections != 40 || s.RSSDeltaPerConnBytes != 100 {
		t.Errorf("server figures %+v, want scraped, 40 connections at peak, 100 B/conn", s)
	}
	if res.Generator.CPUSeconds <= 0 || res.Generator.Cores < 1 {
		t.Errorf("generator %+v, want CPU time measured", res.Generator)
	}
}

func TestConnectWithWorkerProcesses(t *testing.T) {
	t.Setenv(workerEnv, "1")
	srv := newFakeServer(t, 2)
	sc := testScenario(srv.url())
	sc.Workers = 3
	sc.Conns = 31
	sc.SlowFraction = 0.1
	sc.SourceAddrs = []string{"127.0.0.1", "127.0.0.2"}
	var progress strings.Builder
	res, err := run(testCtx(t), sc, &progress, testWorkerCmd)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Connections
	if c.Connected != 31 || c.Subscribed != 31 || c.Slow != 3 {
		t.Fatalf("connections %+v, want 31 subscribed over 3 workers, 3 slow", c)
	}
	if res.Generator.Workers != 3 {
		t.Errorf("workers %d, want 3", res.Generator.Workers)
	}
	// Slow consumers read their subscribed reply and nothing else: 28 x 2 x 2 messages.
	if res.Messages.Received != 112 {
		t.Errorf("received %d, want 112", res.Messages.Received)
	}
	if !strings.Contains(progress.String(), "conns") {
		t.Errorf("no progress line on stderr: %q", progress.String())
	}
}

func TestFailuresByCause(t *testing.T) {
	tests := []struct {
		name  string
		url   func(*fakeServer) string
		cause string
	}{
		{"server refuses upgrades", func(f *fakeServer) string { f.reject = true; return f.url() }, "http_503"},
		{"nothing listens", func(*fakeServer) string { return "ws://127.0.0.1:1/ws" }, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, 0)
			sc := testScenario(tt.url(srv))
			sc.Conns = 5
			sc.Hold = 0
			sc.MetricsURL = "none"
			res, err := run(testCtx(t), sc, io.Discard, testWorkerCmd)
			if err != nil {
				t.Fatal(err)
			}
			if res.Connections.Failures[tt.cause] != 5 {
				t.Errorf("failures %v, want %s=5", res.Connections.Failures, tt.cause)
			}
		})
	}
}

func TestValidateRefusesRemote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Scenario)
		ok     bool
	}{
		{"loopback", func(*Scenario) {}, true},
		{"localhost", func(s *Scenario) { s.URL = "ws://localhost:3002/ws" }, true},
		{"remote server", func(s *Scenario) { s.URL = "ws://10.0.0.1:3002/ws" }, false},
		{"remote allowed", func(s *Scenario) { s.URL = "ws://10.0.0.1:3002/ws"; s.AllowRemote = true }, true},
		{"remote source", func(s *Scenario) { s.SourceAddrs = []string{"192.168.1.2"} }, false},
		{"remote broker", func(s *Scenario) {
			s.Mode = ModeBroadcast
			s.Brokers = []string{"10.1.1.1:9092"}
			s.Steps = []Step{{1, Duration(time.Second)}}
		}, false},
		{"broadcast without steps", func(s *Scenario) { s.Mode = ModeBroadcast; s.Brokers = []string{"127.0.0.1:9092"} }, false},
		{"not websocket", func(s *Scenario) { s.URL = "http://127.0.0.1/ws" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := testScenario("ws://127.0.0.1:3002/ws")
			tt.mutate(&sc)
			if err := sc.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestAutoPlace(t *testing.T) {
	t.Parallel()
	sc := Scenario{Conns: 60000}
	sc.AutoPlace(15000, 25000)
	if sc.Workers != 4 || len(sc.SourceAddrs) != 3 || sc.SourceAddrs[2] != "127.0.0.4" {
		t.Errorf("workers %d sources %v, want 4 and 127.0.0.2-4", sc.Workers, sc.SourceAddrs)
	}
	small := Scenario{Conns: 100}
	small.AutoPlace(15000, 25000)
	if small.Workers != 0 || small.SourceAddrs != nil {
		t.Errorf("small run placed on workers %d sources %v, want in-process, kernel-chosen", small.Workers, small.SourceAddrs)
	}
}

func TestParseSteps(t *testing.T) {
	t.Parallel()
	steps, err := ParseSteps("100:5s, 250.5:1m")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[1].Rate != 250.5 || steps[1].Duration.D() != time.Minute {
		t.Errorf("steps %+v", steps)
	}
	for _, bad := range []string{"100", "x:1s", "1:forever"} {
		if _, err := ParseSteps(bad); err == nil {
			t.Errorf("ParseSteps(%q) accepted", bad)
		}
	}
}

// TestAggregation checks what the orchestrator does with groups' results: histograms merge,
// counters add, loss settles against the producer's acknowledged counts per channel.
func TestAggregation(t *testing.T) {
	t.Parallel()
	mk := func(lat time.Duration, n int, recv int64, chans map[string]*sequence.Counts) *GroupResult {
		h := latency.New()
		for range n {
			h.Record(lat)
		}
		return &GroupResult{
			Connected: 10, Subscribed: 10, Failures: map[string]int64{"http_503": 1}, Dropped: map[string]int64{},
			Handshake: latency.New(), Subscribe: latency.New(), Received: recv,
			FirstDialNs: 1e9, LastSubscribedNs: 3e9,
			Steps:    []StepResult{{Latency: h, Received: recv}},
			Channels: chans,
		}
	}
	a := mk(time.Millisecond, 99, 99, map[string]*sequence.Counts{"trades:lt-0": {Subscribers: 10, Distinct: []int64{50}}})
	b := mk(100*time.Millisecond, 1, 1, map[string]*sequence.Counts{
		"trades:lt-0": {Subscribers: 10, Distinct: []int64{47}, Duplicates: 2},
		"trades:lt-1": {Subscribers: 1, Distinct: []int64{5}},
	})
	r := &Result{Scenario: Scenario{Mode: ModeBroadcast, Steps: []Step{{Rate: 10, Duration: Duration(time.Second)}}}, StepsRun: 1}
	r.fill([]*GroupResult{a, b}, map[string][]int64{"trades:lt-0": {5}, "trades:lt-1": {5}, "trades:lt-2": {4}})
	r.judge()
	if r.Connections.Connected != 20 || r.Connections.Failures["http_503"] != 2 {
		t.Errorf("connections %+v", r.Connections)
	}
	if r.Connections.AllSubscribedSeconds != 2 || r.Connections.HandshakesPerSec != 10 {
		t.Errorf("connect phase %vs at %v/s, want 2s at 10/s", r.Connections.AllSubscribedSeconds, r.Connections.HandshakesPerSec)
	}
	if r.Messages.Received != 100 || r.Messages.Latency.Count != 100 || r.Messages.Latency.MaxMs < 99 {
		t.Errorf("messages %+v", r.Messages)
	}
	if r.Messages.Latency.P99Ms > 1.01 || r.Messages.Latency.P50Ms < 0.99 {
		t.Errorf("merged p50 %v p99 %v, want 1ms (99 of 100 values)", r.Messages.Latency.P50Ms, r.Messages.Latency.P99Ms)
	}
	// lt-0: 20 subscribers x 5 records = 100 expected, 97 distinct; lt-1: 5 of 5.
	if r.Loss.Expected != 105 || r.Loss.Lost != 3 || r.Loss.Duplicates != 2 || r.Loss.OK {
		t.Errorf("loss %+v, want 105 expected, 3 lost, 2 duplicates, not OK", r.Loss)
	}
	if len(r.Steps) != 1 || r.Steps[0].Produced != 14 || r.Steps[0].Lost != 3 {
		t.Errorf("steps %+v, want 14 produced (lt-2 unsubscribed counts), 3 lost", r.Steps)
	}
	if !strings.HasPrefix(r.LossLine(), "LOSS FAIL") {
		t.Errorf("loss line %q", r.LossLine())
	}
}

func FuzzParseSteps(f *testing.F) {
	f.Add("100:5s,200:1m")
	f.Add(":,")
	f.Fuzz(func(t *testing.T, s string) {
		steps, err := ParseSteps(s)
		if err != nil {
			return
		}
		for _, st := range steps {
			_ = st.Duration.D()
		}
	})
}

// TestGenericServer runs a scenario against a server with another protocol: --send replaces
// our subscribe and the extractor reads timestamp, channel and sequence at given paths.
func TestGenericServer(t *testing.T) {
	sc := testScenario(newGenericServer(t, 4))
	sc.MetricsURL = "none"
	sc.Conns = 10
	sc.Send = []string{`{"method":"SUB","params":{channels}}`}
	sc.TsPath, sc.TsUnit, sc.ChannelPath, sc.SeqPath = "p.ts", "ms", "s", "p.n"
	res, err := run(testCtx(t), sc, io.Discard, testWorkerCmd)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections.Subscribed != 10 {
		t.Fatalf("subscribed %d, want 10 (sent counts as subscribed)", res.Connections.Subscribed)
	}
	// 10 connections x 2 channels x 4 messages, each with a millisecond timestamp.
	if res.Messages.Received != 80 || res.Messages.Latency.Count != 80 {
		t.Errorf("received %d (latency n=%d), want 80", res.Messages.Received, res.Messages.Latency.Count)
	}
	if res.Messages.Unparsed != 0 {
		t.Errorf("unparsed frames %d, want 0", res.Messages.Unparsed)
	}
}
