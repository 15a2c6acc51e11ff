package e2etest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// clientCopies are the client library (clients/js) and the copies the variants embed and
// serve beside the demo page; they must be the same bytes.
var clientCopies = []string{
	"clients/js/src/wsclient.js",
	"ws-single/internal/server/web/wsclient.js",
	"ws-multi/internal/server/web/wsclient.js",
}

// TestClientLibraryCopies: the demo pages import the library itself, not a version of it.
func TestClientLibraryCopies(t *testing.T) {
	root := testbin.RepoRoot(t)
	want, err := os.ReadFile(filepath.Join(root, clientCopies[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range clientCopies[1:] {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: copy it again (cp %s %s)", p, clientCopies[0], clientCopies[0], p)
		}
	}
}

// startFeed runs `loadtest dev`: a kfake broker with the servers' topics and a synthetic
// market feed of rate records per second; it returns the broker's address.
func startFeed(t *testing.T, rate string) string {
	t.Helper()
	p := start(t, "loadtest-dev", binary(t, "LOADTEST_BIN", "loadtest"), nil, "dev", "--broker", "127.0.0.1:0", "--rate", rate)
	p.waitOutput(t, "kafka broker on ", 15*time.Second)
	m := regexp.MustCompile(`kafka broker on (\S+) `).FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("no broker address in %q", p.output())
	}
	return m[1]
}

// TestDemoPageMarket: on each variant fed by `loadtest dev`, headless Chromium opens the
// demo page, which imports the served client library; the market table fills (symbols,
// last price, change, sparkline), rate and latency show; the drop button reconnects and the
// page shows the resume, messages recovered and none lost (loadtest/e2e/demo.mjs).
func TestDemoPageMarket(t *testing.T) {
	node := requireBrowser(t)
	dir := e2eDir(t)
	lib, err := os.ReadFile(filepath.Join(testbin.RepoRoot(t), clientCopies[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			broker := startFeed(t, "40")
			srv := startServer(t, v.name, binary(t, v.envVar, v.name), broker)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()

			served := getScript(ctx, t, srv.httpURL()+"wsclient.js")
			if !bytes.Equal(served, lib) {
				t.Fatalf("GET /wsclient.js serves %d bytes that are not clients/js/src/wsclient.js (%d bytes)", len(served), len(lib))
			}

			tmp := t.TempDir()
			shot := filepath.Join(tmp, "demo-market-"+v.name+".png")
			out, wait := startNode(ctx, t, node, dir, "demo.mjs", srv.httpURL(), shot, filepath.Join(tmp, "profile"), "60000")
			if msg := wait(); msg != "" {
				t.Fatalf("demo page: %s\nstdout:\n%s", msg, out.all())
			}
			if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
				t.Fatalf("no screenshot: %v", err)
			}
			if keep := os.Getenv("E2E_SCREENSHOT_DIR"); keep != "" {
				b, err := os.ReadFile(shot)
				if err == nil {
					err = os.WriteFile(filepath.Join(keep, filepath.Base(shot)), b, 0o644)
				}
				if err != nil {
					t.Fatalf("keep screenshot: %v", err)
				}
			}
			t.Logf("page: %s (screenshot %s)", out.all(), shot)
		})
	}
}

// getScript fetches url and fails the test unless it answers 200 with a JavaScript type.
func getScript(ctx context.Context, t *testing.T, url string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Fatalf("GET %s: Content-Type %q, want text/javascript (a module script needs a JavaScript type)", url, ct)
	}
	return b
}
