package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"
	gometrics "github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
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
		if got := demoURL(addr); got != want {
			t.Errorf("demoURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// binary is the ws-single binary under test: WS_SINGLE_BIN (set by make
// test) when it exists, else a fresh build.
func binary(t *testing.T) string {
	if p := os.Getenv("WS_SINGLE_BIN"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	bin := filepath.Join(t.TempDir(), "ws-single")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestProcessServesAndDrainsOnSIGTERM runs the real binary against kfake:
// a record reaches a client, then SIGTERM closes it with 1001 and exits 0.
func TestProcessServesAndDrainsOnSIGTERM(t *testing.T) {
	bin := binary(t)
	cluster, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "trades", "tickers"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := freePort(t)

	var logs bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "WS_ADDR="+addr, "WS_KAFKA_BROKERS="+strings.Join(cluster.ListenAddrs(), ","),
		"WS_KAFKA_RETRY_BACKOFF=50ms", "WS_SHUTDOWN_TIMEOUT=10s",
		// Admission reads the whole host's cgroup outside a container; a busy CI box must not refuse.
		"WS_CPU_REJECT_THRESHOLD=0")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

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
	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(cluster.ListenAddrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "trades", Key: sarama.StringEncoder("BTC-USD"), Value: sarama.StringEncoder(`{"price":"1"}`)})
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `"channel":"trades:BTC-USD"`) {
		t.Fatalf("message %q, %v", data, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "shutdown" {
		t.Fatalf("after SIGTERM read = %v, want close 1001 shutdown", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit = %v, want status 0; logs:\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit 20s after SIGTERM; logs:\n%s", logs.String())
	}
	for _, want := range []string{"GOMAXPROCS pinned to 1", "open http://" + addr + "/", "draining", "kafka attached"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
}
