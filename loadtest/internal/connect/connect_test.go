package connect

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRunFlagsToResult drives the subcommand as the CLI does: flags in, table on stdout,
// progress on stderr, --out JSON with the scenario.
func TestRunFlagsToResult(t *testing.T) {
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		if _, _, err := c.Read(r.Context()); err != nil {
			return
		}
		if c.Write(r.Context(), websocket.MessageText, []byte(`{"op":"subscribed","id":"lt","channels":["x"]}`)) != nil {
			return
		}
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		wg.Wait()
	})
	out := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	err := Run(ctx, []string{"--url", url, "--conns", "7", "--ramp", "0", "--hold", "200ms", "--metrics-url", "none", "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res load.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Scenario.Conns != 7 || res.Scenario.Mode != load.ModeConnect || res.Connections.Subscribed != 7 {
		t.Errorf("scenario %+v, subscribed %d; want 7 connect-mode connections subscribed", res.Scenario, res.Connections.Subscribed)
	}
	if !strings.Contains(stdout.String(), "connected 7, subscribed 7") {
		t.Errorf("table:\n%s", stdout.String())
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"remote target", []string{"--url", "ws://192.0.2.1:3002/ws"}},
		{"stray argument", []string{"extra"}},
		{"unknown flag", []string{"--nope"}},
		{"bad distribution", []string{"--dist", "pareto"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			if err := Run(context.Background(), tt.args, &out, &errOut); err == nil {
				t.Errorf("Run(%q) = nil, want an error", tt.args)
			}
		})
	}
}
