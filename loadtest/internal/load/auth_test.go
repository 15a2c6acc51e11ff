package load

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTokenAuth runs connections that authenticate (Scenario.Token) against the fake server
// with auth required: the token goes first, the subscribe right behind it (the fake reads
// both before it answers), and a connection counts as subscribed only once both replies came.
func TestTokenAuth(t *testing.T) {
	tests := []struct {
		name       string
		token      string // the scenario's
		accepts    string // the fake server's ("" = no auth)
		authOrder  string
		workers    int
		subscribed int64
		failures   map[string]int64
		first      string // prefix of every connection's first request
	}{
		{name: "no token: the subscribe first, as before", first: `{"op":"subscribe","id":"lt","channels":["trades:lt-`, subscribed: 8},
		{name: "token, then subscribe", token: "tok.en.sig", accepts: "tok.en.sig", subscribed: 8,
			first: `{"op":"auth","id":"a","token":"tok.en.sig"}`},
		{name: "token through worker processes", token: "tok.en.sig", accepts: "tok.en.sig", workers: 2, subscribed: 8,
			first: `{"op":"auth","id":"a","token":"tok.en.sig"}`},
		{name: "subscribed before authed still waits for authed", token: "t", accepts: "t", authOrder: "late", subscribed: 8, first: `{"op":"auth"`},
		{name: "no authed reply: not subscribed", token: "t", accepts: "t", authOrder: "none",
			failures: map[string]int64{"subscribe_timeout": 8}, first: `{"op":"auth"`},
		{name: "token refused", token: "forged", accepts: "t",
			failures: map[string]int64{"auth_error_invalid_token": 8}, first: `{"op":"auth","id":"a","token":"forged"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.workers > 1 {
				t.Setenv(workerEnv, "1")
			}
			srv := newFakeServer(t, 2)
			srv.token, srv.authOrder = tt.accepts, tt.authOrder
			sc := testScenario(srv.url())
			sc.Conns, sc.Workers, sc.Token = 8, tt.workers, tt.token
			sc.Hold = Duration(100 * time.Millisecond)
			sc.SubscribeTimeout = Duration(time.Second)
			res, err := run(testCtx(t), sc, io.Discard, testWorkerCmd)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Connections
			if c.Connected != 8 || c.Subscribed != tt.subscribed || c.Failed != 8-tt.subscribed {
				t.Fatalf("connections %+v, want 8 connected, %d subscribed, the rest failed", c, tt.subscribed)
			}
			for cause, n := range tt.failures {
				if c.Failures[cause] != n {
					t.Errorf("failures %v, want %s=%d", c.Failures, cause, n)
				}
			}
			// 2 subscriptions x 2 messages per connection.
			if tt.subscribed == 8 && res.Messages.Received != 32 {
				t.Errorf("received %d, want 32", res.Messages.Received)
			}
			if tt.subscribed > 0 && (c.Subscribe.Count != tt.subscribed || c.AllSubscribedSeconds <= 0 || c.HandshakesPerSec <= 0) {
				t.Errorf("subscribe n=%d, all subscribed after %vs (%v/s): want every subscribed one timed", c.Subscribe.Count, c.AllSubscribedSeconds, c.HandshakesPerSec)
			}
			srv.mu.Lock()
			firsts := srv.firsts
			srv.mu.Unlock()
			if len(firsts) != 8 {
				t.Fatalf("%d first requests, want 8", len(firsts))
			}
			for _, f := range firsts {
				if !strings.HasPrefix(f, tt.first) || (tt.token == "" && strings.Contains(f, `"positioned"`)) {
					t.Fatalf("first request %s, want it to start with %s", f, tt.first)
				}
			}
			if want := map[bool]string{true: "", false: "redacted"}[tt.token == ""]; res.Scenario.Token != want {
				t.Errorf("result's token %q, want %q", res.Scenario.Token, want)
			}
		})
	}
}

func TestValidateToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Scenario)
		ok     bool
	}{
		{"our protocol", func(*Scenario) {}, true},
		{"with send texts", func(s *Scenario) { s.Send = []string{`{"op":"subscribe","id":"lt","channels":{channels}}`} }, true},
		{"another server", func(s *Scenario) { s.TsPath = "p.ts" }, false},
		{"failover", func(s *Scenario) {
			s.Mode, s.Brokers, s.Steps = ModeBroadcast, []string{"127.0.0.1:9092"}, []Step{{1, Duration(time.Minute)}}
			s.Failover = &Failover{URL: "ws://127.0.0.1:2/ws"}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := testScenario("ws://127.0.0.1:3002/ws")
			sc.Token = "a.b.c"
			tt.mutate(&sc)
			err := sc.Validate()
			if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "token")) {
				t.Errorf("Validate() = %v, want ok=%v (else an error naming the token)", err, tt.ok)
			}
		})
	}
}

// TestCommandToken: --token sets the scenario's token, over a scenario file's.
func TestCommandToken(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		flags []string
		want  string
	}{
		{name: "flag", flags: []string{"--token", "from.the.flag"}, want: "from.the.flag"},
		{name: "scenario file", file: `{"token": "from.the.file"}`, want: "from.the.file"},
		{name: "flag over file", file: `{"token": "from.the.file"}`, flags: []string{"--token", "from.the.flag"}, want: "from.the.flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, 1)
			srv.token = tt.want
			args := append([]string{"--url", srv.url(), "--conns", "3", "--ramp", "0", "--hold", "50ms", "--channels", "2"}, tt.flags...)
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "scenario.json")
				if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--scenario", path)
			}
			var out strings.Builder
			if err := Command(testCtx(t), ModeConnect, args, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "subscribed") {
				t.Errorf("no table: %q", out.String())
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			want := `{"op":"auth","id":"a","token":"` + tt.want + `"}`
			if len(srv.firsts) != 3 || srv.firsts[0] != want {
				t.Errorf("first requests %q, want 3 of %s", srv.firsts, want)
			}
		})
	}
}

// TestHandleMessageAllocs: reading a message costs no allocation, with or without a token
// (the auth handling is off the message path).
func TestHandleMessageAllocs(t *testing.T) {
	line := []byte(`{"op":"message","channel":"trades:lt-0","topic":"trades","partition":0,"offset":7,"ts":1,"data":{"sent_ns":1,"step":0}}`)
	for _, token := range []string{"", "a.b.c"} {
		sc := testScenario("ws://127.0.0.1:1/ws")
		sc.Token = token
		g, err := newGroup(Plan{Scenario: sc, From: 0, To: 1})
		if err != nil {
			t.Fatal(err)
		}
		cs := &g.conns[0]
		cs.subscribed = true
		if token != "" {
			cs.auth = authDone
		}
		sh := &g.shards[0]
		if n := testing.AllocsPerRun(100, func() { g.handle(sh, cs, line, time.Time{}) }); n != 0 {
			t.Errorf("token %q: %v allocations per message, want 0", token, n)
		}
		g.dialers.close()
	}
}
