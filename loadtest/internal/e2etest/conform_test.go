package e2etest

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestConformance runs `loadtest conform` (the built binary, as a user would) against
// both variants: once with the README defaults, once with non-default limits and
// batching off, to prove the servers honour their settings.
func TestConformance(t *testing.T) {
	lt := binary(t, "LOADTEST_BIN", "loadtest")
	variants := []struct{ name, envVar string }{
		{"ws-single", "WS_SINGLE_BIN"},
		{"ws-multi", "WS_MULTI_BIN"},
	}
	configs := []struct {
		name string
		env  []string
		args []string
		// checks is how many checks this configuration runs.
		checks int
	}{
		{
			name:   "defaults",
			env:    []string{"WS_MAX_CONNECTIONS=8"},
			args:   []string{"--max-connections", "8"},
			checks: 29,
		},
		{
			name: "custom limits, batching off",
			env: []string{"WS_MAX_CONNECTIONS=5", "WS_MAX_SUBSCRIPTIONS=12", "WS_READ_LIMIT=1024",
				"WS_RATE_LIMIT=15", "WS_RATE_BURST=25", "WS_BATCH=false"},
			args: []string{"--max-connections", "5", "--max-subscriptions", "12", "--read-limit", "1024",
				"--rate-limit", "15", "--rate-burst", "25", "--expect-batching=false"},
			checks: 29,
		},
		{
			name:   "slow consumer and ping timeout",
			env:    []string{"WS_MAX_CONNECTIONS=6", "WS_SEND_QUEUE_MESSAGES=500", "WS_PING_INTERVAL=1s", "WS_WRITE_TIMEOUT=3s"},
			args:   []string{"--max-connections", "6", "--send-queue-messages", "500", "--ping-interval", "1s", "--write-timeout", "3s"},
			checks: 31,
		},
		{
			name:   "small batches",
			env:    []string{"WS_MAX_CONNECTIONS=4", "WS_BATCH_MAX_BYTES=2048"},
			args:   []string{"--max-connections", "4", "--batch-max-bytes", "2048"},
			checks: 29,
		},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			bin := binary(t, v.envVar, v.name)
			for _, c := range configs {
				t.Run(c.name, func(t *testing.T) {
					broker := startBroker(t)
					srv := startServer(t, v.name, bin, broker, c.env...)
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					args := append([]string{"conform", "--url", srv.wsURL(), "--brokers", broker}, c.args...)
					start := time.Now()
					out, err := runTool(ctx, "", nil, lt, args...)
					t.Logf("loadtest %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
					if err != nil {
						t.Fatalf("%s failed the conformance suite: %v", v.name, err)
					}
					assertAllPassed(t, out, c.checks)
				})
			}
		})
	}
}

var summaryLine = regexp.MustCompile(`(?m)^conform: (\d+) passed, (\d+) failed$`)

func assertAllPassed(t *testing.T, out string, min int) {
	t.Helper()
	m := summaryLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no `conform: N passed, N failed` line")
	}
	if m[2] != "0" || strings.Contains(out, "\nFAIL ") {
		t.Fatalf("%s checks failed", m[2])
	}
	// Every check, including the 1013 one that needs --max-connections, must have run.
	if n := strings.Count(out, "\nPASS "); n < min {
		t.Fatalf("only %d checks ran, want all %d", n, min)
	}
}
