//go:build deploycheck

package deploycheck

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/syncbuf"
	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// startProcess starts bin with args and extra environment; cleanup sends SIGTERM, waits up to
// 20s (then kills) and, when the test failed, logs the tail of its output.
func startProcess(t *testing.T, name, bin string, env []string, args ...string) {
	t.Helper()
	var out syncbuf.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan error, 1) // size 1: the waiter never blocks, even if nobody reads
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop within 20s of SIGTERM", name)
		}
		if t.Failed() {
			s := out.String()
			if len(s) > 4000 {
				s = "..." + s[len(s)-4000:]
			}
			t.Logf("%s output:\n%s", name, s)
		}
	})
}

// httpClient has no keep-alive pool, so no idle-connection goroutine outlives a test.
func httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// waitHTTP200 polls url until it answers 200 or the deadline passes.
func waitHTTP200(t *testing.T, url string, within time.Duration) {
	t.Helper()
	c := httpClient()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not 200 within %v (last: %s)", url, within, last)
}

// serverBinary is the binary to run: a private copy of $envVar when set (make test/deploy
// passes the binaries it just built; the copy cannot change under a running test when bin/ is
// rebuilt), else a fresh `go build` of the module.
func serverBinary(t *testing.T, envVar, module string) string {
	t.Helper()
	dir := t.TempDir()
	if p, ok := testbin.FromEnv(t, envVar); ok {
		out := filepath.Join(dir, module)
		if err := copyFile(p, out); err != nil {
			t.Fatalf("%s=%s: %v", envVar, p, err)
		}
		return out
	}
	return testbin.Build(t, module, dir)
}

// metricValue reads one sample from a Prometheus text exposition, e.g.
// `ws_disconnects_total{reason="slow"}`; it returns "" when absent.
func metricValue(exposition, series string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}
