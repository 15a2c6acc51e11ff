package conform

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Before any sarama client, so no test races on the process-wide switch.
	metrics.UseNilMetrics = true
	goleak.VerifyTestMain(m)
}

func startKafka(t *testing.T, topic string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// TestSuitePassesAgainstReference runs the whole suite through Run, as the CLI does,
// against the reference server.
func TestSuitePassesAgainstReference(t *testing.T) {
	brokers := startKafka(t, "trades")
	url := startRefServer(t, brokers, "trades", refOptions{maxConns: 6, maxRecord: 100000, writeTimeout: 2 * time.Second, idleTimeout: time.Second, maxConnsPerIP: 4})
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// kfake, like Kafka, refuses a record above 1 MiB: the reference server's record limit
	// is lower, so that the suite can produce a record one byte over it.
	err := Run(ctx, []string{"--url", url, "--brokers", strings.Join(brokers, ","), "--max-connections", "6",
		"--max-record-bytes", "100000", "--write-timeout", "2s", "--http-idle-timeout", "1s", "--http-max-conns-per-ip", "4"}, &out, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "conform: ") || !strings.Contains(out.String(), " 0 failed") {
		t.Fatal("want every check to pass")
	}
	if n := strings.Count(out.String(), "PASS "); n < 43 {
		t.Fatalf("%d checks passed, want every check (43) to run", n)
	}
}

// TestSuiteCatchesFaults switches on one violation at a time and expects exactly the
// checks that cover it to fail.
func TestSuiteCatchesFaults(t *testing.T) {
	tests := []struct {
		name     string
		faults   refFaults
		only     string
		wantFail string
	}{
		{name: "no de-duplication", faults: refFaults{noDedup: true}, only: "^reply: subscribe", wantFail: "reply: subscribe/unsubscribe"},
		{name: "no batching", faults: refFaults{noBatch: true}, only: "^batching", wantFail: "batching: frames under a burst"},
		{name: "trailing newline", faults: refFaults{trailingNL: true}, only: "^reply: ping|^frames", wantFail: "frames: every frame"},
		{name: "data not compacted", faults: refFaults{rawData: true}, only: "^message: data", wantFail: "message: data"},
		{name: "twice with wildcard", faults: refFaults{twiceOnWild: true}, only: "^channel: once", wantFail: "channel: once-only"},
	}
	brokers := startKafka(t, "trades")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := startRefServer(t, brokers, "trades", refOptions{faults: tt.faults})
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			results, err := RunSuite(ctx, Config{URL: url, Brokers: brokers, ExpectBatching: true, Only: tt.only, CheckTimeout: 3 * time.Second}, &out)
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + out.String())
			failed := false
			for _, r := range results {
				if r.Err != nil && strings.HasPrefix(r.Name, tt.wantFail) {
					failed = true
				}
			}
			if !failed {
				t.Fatalf("check %q did not fail", tt.wantFail)
			}
		})
	}
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "help", args: []string{"--help"}, wantErr: flag.ErrHelp.Error()},
		{name: "http url", args: []string{"--url", "http://127.0.0.1:1/ws"}, wantErr: "scheme"},
		{name: "no brokers", args: []string{"--brokers", ""}, wantErr: "--brokers"},
		{name: "bad topic", args: []string{"--topic", "a:b"}, wantErr: "--topic"},
		{name: "bad regexp", args: []string{"--run", "("}, wantErr: "--run"},
		{name: "stray argument", args: []string{"x"}, wantErr: "unexpected"},
		{name: "header limit too low", args: []string{"--max-header-bytes", "100"}, wantErr: "--max-header-bytes"},
		{name: "record limit too low", args: []string{"--max-record-bytes", "10"}, wantErr: "--max-record-bytes"},
		{name: "negative idle timeout", args: []string{"--http-idle-timeout", "-1s"}, wantErr: "--http-idle-timeout"},
		{name: "negative per-address cap", args: []string{"--http-max-conns-per-ip", "-1"}, wantErr: "--http-max-conns-per-ip"},
		{name: "send queue bytes too low", args: []string{"--send-queue-bytes", "100"}, wantErr: "--send-queue-bytes"},
		{name: "slow check with a short write timeout", args: []string{"--send-queue-messages", "500", "--write-timeout", "1s"}, wantErr: "--write-timeout"},
		{name: "conflate checks with a short write timeout", args: []string{"--conflate", "--write-timeout", "1500ms"}, wantErr: "--write-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), tt.args, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestPaddedPingSize(t *testing.T) {
	for _, size := range []int{64, 4096, 4097} {
		if got := len(paddedPing("x", size)); got != size {
			t.Fatalf("paddedPing(%d) is %d bytes", size, got)
		}
	}
}
