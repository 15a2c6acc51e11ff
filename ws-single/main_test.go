// This file is duplicated in ws-multi (main_test.go) on purpose: the variants differ only in setProcs and the shard count; they may diverge.

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	gometrics "github.com/rcrowley/go-metrics"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/cgroup"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
)

func TestMain(m *testing.M) {
	gometrics.UseNilMetrics = true // as main does, for the test's own producer
	goleak.VerifyTestMain(m)
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		stdout     string
		stderrPart string
	}{
		{name: "version", args: []string{"--version"}, code: 0, stdout: "ws-single v0.0.0-dev (commit unknown)\n"},
		{name: "invalid config", env: map[string]string{"WS_READ_LIMIT": "abc"}, code: 2, stderrPart: "WS_READ_LIMIT"},
		{name: "invalid log level", env: map[string]string{"WS_LOG_LEVEL": "loud"}, code: 2, stderrPart: "WS_LOG_LEVEL"},
		{name: "brokers set but empty", env: map[string]string{"WS_KAFKA_BROKERS": ""}, code: 2, stderrPart: `WS_KAFKA_BROKERS="": must not be empty`},
		{name: "topics only commas", env: map[string]string{"WS_KAFKA_TOPICS": " , "}, code: 2, stderrPart: `WS_KAFKA_TOPICS=" , ": must not be empty`},
		{name: "ping interval of 1ns", env: map[string]string{"WS_PING_INTERVAL": "1ns"}, code: 2, stderrPart: `WS_PING_INTERVAL="1ns": must be at least 1s`},
		{name: "header limit too small", env: map[string]string{"WS_MAX_HEADER_BYTES": "100"}, code: 2, stderrPart: "WS_MAX_HEADER_BYTES"},
		{name: "idle timeout of 0", env: map[string]string{"WS_HTTP_IDLE_TIMEOUT": "0s"}, code: 2, stderrPart: "WS_HTTP_IDLE_TIMEOUT"},
		{name: "negative per-IP cap", env: map[string]string{"WS_HTTP_MAX_CONNS_PER_IP": "-1"}, code: 2, stderrPart: "WS_HTTP_MAX_CONNS_PER_IP"},
		{name: "record limit of 0", env: map[string]string{"WS_MAX_RECORD_BYTES": "0"}, code: 2, stderrPart: "WS_MAX_RECORD_BYTES"},
		{name: "unknown argument", args: []string{"bogus"}, code: 2, stderrPart: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, env(tt.env), &stdout, &stderr)
			if code != tt.code || (tt.stdout != "" && stdout.String() != tt.stdout) || !strings.Contains(stderr.String(), tt.stderrPart) {
				t.Fatalf("run(%v) = %d, stdout %q, stderr %q", tt.args, code, stdout.String(), stderr.String())
			}
		})
	}
}

func TestHealthcheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	var stderr bytes.Buffer
	if code := run([]string{"healthcheck"}, env(map[string]string{"WS_ADDR": ":" + port}), &stderr, &stderr); code != 0 {
		t.Fatalf("healthcheck on a live server = %d: %s", code, stderr.String())
	}
	_ = srv.Close()
	if code := run([]string{"healthcheck"}, env(map[string]string{"WS_ADDR": ":" + port}), &stderr, &stderr); code != 1 {
		t.Fatalf("healthcheck on a dead port = %d, want 1", code)
	}
}

func TestDemoURL(t *testing.T) {
	for addr, want := range map[string]string{
		":3002": "http://127.0.0.1:3002/", "0.0.0.0:80": "http://127.0.0.1:80/", "10.0.0.1:3002": "http://10.0.0.1:3002/",
	} {
		if got := demoURL(addr, false); got != want {
			t.Errorf("demoURL(%q) = %q, want %q", addr, got, want)
		}
	}
	if got, want := demoURL(":3002", true), "https://127.0.0.1:3002/"; got != want {
		t.Errorf("demoURL with TLS = %q, want %q", got, want)
	}
}

// TestUnreadableCgroupUsesHostLimits: a cgroup that cannot be read is a
// warning, not an exit: the host's CPUs, no memory limit.
func TestUnreadableCgroupUsesHostLimits(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	cfg := config.Default()
	cg, maxConns := resources(cfg, zap.New(core), func() (*cgroup.Reader, error) {
		return nil, errors.New("cgroup: read /proc/self/cgroup: permission denied")
	})
	if cg == nil || cg.Version() != 0 || maxConns < 1 {
		t.Fatalf("resources() = %v, %d; want an empty reader and a positive limit", cg, maxConns)
	}
	warn := logs.FilterMessage("cgroup limits unavailable; using host limits").All()
	if len(warn) != 1 || warn[0].Level != zap.WarnLevel || warn[0].ContextMap()["error"] == nil {
		t.Fatalf("warnings = %v, want one with the error", warn)
	}
	lim := logs.FilterMessage("limits").All()
	if len(lim) != 1 || lim[0].ContextMap()["cpu_cores"] != float64(runtime.NumCPU()) || lim[0].ContextMap()["memory_bytes"] != int64(0) {
		t.Fatalf("limits line = %v, want the host's CPUs and no memory limit", lim)
	}
}

// syncBuffer is the process's log output, read while run writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeDrainsOnSIGTERM runs the process in-process against kfake: a record
// reaches a client, then SIGTERM (to this process: run's signal context catches
// it) closes the client with 1001 and run returns 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	cluster := kafkatest.NewCluster(t, 0)
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	addr := freePort(t)

	var logs syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"serve"}, env(map[string]string{
			"WS_ADDR": addr, "WS_KAFKA_BROKERS": strings.Join(brokers, ","),
			"WS_KAFKA_RETRY_BACKOFF": "50ms", "WS_SHUTDOWN_TIMEOUT": "10s",
			// Admission reads the whole host's cgroup outside a container; a busy CI box must not refuse.
			"WS_CPU_REJECT_THRESHOLD": "0",
		}), &logs, &logs)
	}()

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	ready := func() bool {
		resp, err := hc.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	await.True(t, 30*time.Second, ready, "ready")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"op":"subscribe","id":"1","channels":["trades:*"]}`)); err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `"subscribed"`) {
		t.Fatalf("subscribe reply %q, %v", data, err)
	}
	kafkatest.Produce(t, brokers, kafkatest.Record("trades", 0, "BTC-USD", `{"price":"1"}`))
	if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `"channel":"trades:BTC-USD"`) {
		t.Fatalf("message %q, %v", data, err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The drain's last line: positions and a reconnect delay, then 1001.
	if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `{"op":"draining","reconnect_after_ms":`) {
		t.Fatalf("after SIGTERM read %q, %v; want the draining line", data, err)
	}
	_, _, err = ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "shutdown" {
		t.Fatalf("after SIGTERM read = %v, want close 1001 shutdown", err)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("run = %d, want 0; logs:\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not return 20s after SIGTERM; logs:\n%s", logs.String())
	}
	for _, want := range []string{"GOMAXPROCS pinned to 1", `"msg":"limits"`, `"msg":"ws-single starting"`,
		"open http://" + addr + "/", "draining", "kafka attached", `"msg":"ws-single stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}
