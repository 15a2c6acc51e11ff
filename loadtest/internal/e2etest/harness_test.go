package e2etest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rcrowley/go-metrics"
	"go.uber.org/goleak"

	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// binaries builds each binary at most once per test process. It is package state only in
// tests, where TestMain owns its lifetime (the temporary directory is removed at the end).
var binaries = &binaryCache{paths: map[string]string{}}

type binaryCache struct {
	mu    sync.Mutex
	dir   string
	paths map[string]string
}

func TestMain(m *testing.M) {
	// Before any sarama client, so no test races on the process-wide switch.
	metrics.UseNilMetrics = true
	dir, err := os.MkdirTemp("", "ws_poc-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binaries.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary returns the path of a built binary: the file named by envVar, or one built from
// the module directory (ws-single, ws-multi, loadtest) when envVar is unset.
func binary(t *testing.T, envVar, module string) string {
	t.Helper()
	if p, ok := testbin.FromEnv(t, envVar); ok {
		return p
	}
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if p, ok := binaries.paths[module]; ok {
		return p
	}
	p := testbin.Build(t, module, binaries.dir)
	binaries.paths[module] = p
	return p
}

// startBroker starts an in-process broker with the topics the servers consume.
func startBroker(t *testing.T) string {
	t.Helper()
	b, err := dev.NewBroker(dev.BrokerConfig{Addr: "127.0.0.1:0", Topics: []string{dev.TradesTopic, dev.TickersTopic}, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

// process is a started binary whose output goes to a file.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error // set before exited closes
}

// start runs bin with args and extra environment; Cleanup stops it with SIGTERM (SIGKILL
// after 20 s) and logs its output if the test failed.
func start(t *testing.T, name, bin string, env []string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = f
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

// stop signals the process and waits for it to exit; it returns the exit error.
func (p *process) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("%s did not exit within 20s of %v; killed", p.name, sig)
	}
	return p.err
}

func (p *process) output() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// waitOutput waits until the process output contains text.
func (p *process) waitOutput(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.output(), text) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, text, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v:\n%s", p.name, text, timeout, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// server is a running ws-single or ws-multi.
type server struct {
	*process
	addr string
}

func (s *server) wsURL() string   { return "ws://" + s.addr + "/ws" }
func (s *server) httpURL() string { return "http://" + s.addr + "/" }

// variants are the two servers under test and the variables naming their binaries.
var variants = []struct{ name, envVar string }{{"ws-single", "WS_SINGLE_BIN"}, {"ws-multi", "WS_MULTI_BIN"}}

// startServer starts a server binary consuming broker and waits for /readyz.
func startServer(t *testing.T, name, bin, broker string, env ...string) *server {
	t.Helper()
	s := startServerUnready(t, name, bin, broker, env...)
	waitReady(t, s, 30*time.Second)
	return s
}

// startServerUnready starts a server binary consuming broker, without waiting for /readyz.
func startServerUnready(t *testing.T, name, bin, broker string, env ...string) *server {
	t.Helper()
	addr := testbin.FreeAddr(t)
	base := []string{
		"WS_ADDR=" + addr,
		"WS_KAFKA_BROKERS=" + broker,
		"WS_KAFKA_TOPICS=trades,tickers",
		"WS_LOG_FORMAT=console",
		"WS_LOG_LEVEL=warn",
		"WS_SHUTDOWN_TIMEOUT=3s",
		// The suite and the tests open connections quickly from one process; CPU
		// admission on a shared 2-core machine would make them flaky.
		"WS_CPU_REJECT_THRESHOLD=0",
	}
	return &server{process: start(t, name, bin, append(base, env...)), addr: addr}
}

func waitReady(t *testing.T, s *server, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	url := "http://" + s.addr + "/readyz"
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-s.exited:
			t.Fatalf("%s exited (%v) before /readyz answered 200:\n%s", s.name, s.err, s.output())
		case <-ctx.Done():
			t.Fatalf("%s: /readyz not 200 within %v (last: %s):\n%s", s.name, timeout, last, s.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runTool runs a command to completion with a deadline and returns its combined output.
func runTool(ctx context.Context, dir string, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// requireTool fails the test when a program is not installed.
func requireTool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (%v): %s", name, err, hint)
	}
	return p
}

// lineWaiter collects a process's stdout line by line; it is the process's Stdout
// writer, so no pipe is left for a grandchild (Chromium) to hold open. Close marks the
// end of the output.
type lineWaiter struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	done    bool
	changed chan struct{} // size 1: coalesced wake-up
}

func newLineWaiter() *lineWaiter {
	return &lineWaiter{changed: make(chan struct{}, 1)}
}

// Write implements io.Writer.
func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, strings.TrimRight(string(w.partial[:i]), "\r"))
		w.partial = w.partial[i+1:]
	}
	w.mu.Unlock()
	w.wake()
	return len(p), nil
}

// Close marks the end of the output.
func (w *lineWaiter) Close() {
	w.mu.Lock()
	if len(w.partial) > 0 {
		w.lines = append(w.lines, string(w.partial))
		w.partial = nil
	}
	w.done = true
	w.mu.Unlock()
	w.wake()
}

func (w *lineWaiter) wake() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// waitLine returns the first line for which match is true.
func (w *lineWaiter) waitLine(ctx context.Context, match func(string) bool) (string, error) {
	for {
		w.mu.Lock()
		for _, l := range w.lines {
			if match(l) {
				w.mu.Unlock()
				return l, nil
			}
		}
		done := w.done
		w.mu.Unlock()
		if done {
			return "", errors.New("output ended")
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// all returns every line so far.
func (w *lineWaiter) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}
