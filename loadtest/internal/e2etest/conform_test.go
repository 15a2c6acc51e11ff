package e2etest

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestConformance runs `loadtest conform` (the built binary, as a user would) against
// both variants: once with the README defaults, then with non-default limits, to prove
// the servers honour their settings.
//
// The configurations without auth run the checks of positions and resume (--resume):
// with the default WS_MARK_INTERVAL, with short ones, with a history of 5 records (replays
// past it come from Kafka) and with the history off (every replay from Kafka). They run the
// checks of conflation (--conflate) too: behind with WS_SEND_QUEUE_MESSAGES at its default
// and at 500, with batching off and with small batches, conflated resumes from memory and
// from Kafka, and no marks at an interval where the suite is told WS_MARK_INTERVAL.
//
// Two configurations switch auth on (issue 15): "auth required" (HS256 and RS256 from a
// JWK Set, a 1 s auth timeout) and "auth optional" (HS256), both with public channels and
// a 1 s expiry grace; they run only the auth checks.
//
// The in-process broker (kfake), like Kafka, refuses a record above about 1 MiB, so every
// configuration that runs the record checks sets WS_MAX_RECORD_BYTES below the README
// default: the suite must produce a record one byte over it.
func TestConformance(t *testing.T) {
	lt := binary(t, "LOADTEST_BIN", "loadtest")
	configs := []struct {
		name string
		env  []string
		args []string
		// setup, when set, starts what the configuration needs (a JWK Set) and returns
		// more server variables and suite flags.
		setup func(t *testing.T) (env, args []string)
		// checks is how many checks this configuration runs.
		checks int
	}{
		{
			name:   "defaults",
			env:    []string{"WS_MAX_CONNECTIONS=8", "WS_MAX_RECORD_BYTES=1000000"},
			args:   []string{"--max-connections", "8", "--max-record-bytes", "1000000", "--resume", "--mark-interval", "2s", "--conflate"},
			checks: 61,
		},
		{
			name: "custom limits, batching off",
			env: []string{"WS_MAX_CONNECTIONS=5", "WS_MAX_SUBSCRIPTIONS=12", "WS_READ_LIMIT=1024",
				"WS_RATE_LIMIT=15", "WS_RATE_BURST=25", "WS_BATCH=false", "WS_MAX_HEADER_BYTES=4096",
				"WS_SEND_QUEUE_BYTES=1048576", "WS_MAX_RECORD_BYTES=1000000", "WS_MARK_INTERVAL=250ms", "WS_RESUME_MAX_AGE=10m"},
			args: []string{"--max-connections", "5", "--max-subscriptions", "12", "--read-limit", "1024",
				"--rate-limit", "15", "--rate-burst", "25", "--expect-batching=false", "--max-header-bytes", "4096",
				"--send-queue-bytes", "1048576", "--max-record-bytes", "1000000",
				"--resume", "--mark-interval", "250ms", "--resume-max-age", "10m", "--conflate"},
			checks: 61,
		},
		{
			name: "slow consumer and ping timeout",
			env: []string{"WS_MAX_CONNECTIONS=6", "WS_SEND_QUEUE_MESSAGES=500", "WS_PING_INTERVAL=1s", "WS_WRITE_TIMEOUT=3s",
				"WS_MAX_RECORD_BYTES=1000000", "WS_HISTORY_RECORDS=5", "WS_MARK_INTERVAL=200ms"},
			args: []string{"--max-connections", "6", "--send-queue-messages", "500", "--ping-interval", "1s", "--write-timeout", "3s",
				"--max-record-bytes", "1000000", "--resume", "--history-records", "5", "--mark-interval", "200ms", "--conflate"},
			checks: 64,
		},
		{
			name: "small batches, small records, HTTP limits",
			env: []string{"WS_MAX_CONNECTIONS=4", "WS_BATCH_MAX_BYTES=2048", "WS_MAX_RECORD_BYTES=65536",
				"WS_SEND_QUEUE_BYTES=262144", "WS_HTTP_IDLE_TIMEOUT=1s", "WS_HTTP_MAX_CONNS_PER_IP=4",
				"WS_HISTORY_RECORDS=0"},
			args: []string{"--max-connections", "4", "--batch-max-bytes", "2048", "--max-record-bytes", "65536",
				"--send-queue-bytes", "262144", "--http-idle-timeout", "1s", "--http-max-conns-per-ip", "4",
				"--resume", "--history-records", "-1", "--conflate"},
			checks: 62,
		},
		// The auth configurations run only the auth checks (and the frame check): the
		// others subscribe without a token. See auth_test.go for their settings.
		{name: "auth required", setup: authRequired, checks: 22},
		{name: "auth optional", setup: authOptional, checks: 18},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			bin := binary(t, v.envVar, v.name)
			for _, c := range configs {
				t.Run(c.name, func(t *testing.T) {
					env, cargs := c.env, c.args
					if c.setup != nil {
						e, a := c.setup(t)
						env, cargs = append(slices.Clone(env), e...), append(slices.Clone(cargs), a...)
					}
					broker := startBroker(t)
					srv := startServer(t, v.name, bin, broker, env...)
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					args := append([]string{"conform", "--url", srv.wsURL(), "--brokers", broker}, cargs...)
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
