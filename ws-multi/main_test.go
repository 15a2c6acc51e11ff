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

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// binary returns the ws-multi binary: $WS_MULTI_BIN when the Makefile built it, else a fresh
// build of this module.
func binary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("WS_MULTI_BIN"); bin != "" {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	bin := filepath.Join(t.TempDir(), "ws-multi")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBinary(t *testing.T) {
	bin := binary(t)

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || !strings.HasPrefix(string(out), "ws-multi ") || !strings.Contains(string(out), "(commit ") {
			t.Errorf("--version = %q, %v", out, err)
		}
	})

	t.Run("invalid config exits 2 naming the variable", func(t *testing.T) {
		tests := []struct{ name, value string }{
			{"WS_READ_LIMIT", "abc"},
			{"WS_KAFKA_BROKERS", ""},
			{"WS_KAFKA_TOPICS", " , "},
			{"WS_PING_INTERVAL", "1ns"},
			{"WS_HTTP_IDLE_TIMEOUT", "0s"},
			{"WS_HTTP_MAX_CONNS_PER_IP", "-1"},
			{"WS_MAX_HEADER_BYTES", "512"},
			{"WS_MAX_RECORD_BYTES", "0"},
		}
		for _, tt := range tests {
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), tt.name+"="+tt.value)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), tt.name) {
				t.Errorf("%s=%q: exit %v, stderr %q; want status 2 naming %s", tt.name, tt.value, err, stderr.String(), tt.name)
			}
		}
	})

	t.Run("SIGTERM drains clients with 1001 and exits 0", func(t *testing.T) {
		cl, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(2, "trades", "tickers"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		addr := freeAddr(t)
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "WS_ADDR="+addr, "WS_KAFKA_BROKERS="+cl.ListenAddrs()[0],
			"WS_KAFKA_RETRY_BACKOFF=50ms", "WS_KAFKA_RETRY_BACKOFF_MAX=200ms", "WS_SHUTDOWN_TIMEOUT=5s",
			// Admission reads the whole host's cgroup outside a container; a busy CI box must not refuse.
			"WS_CPU_REJECT_THRESHOLD=0")
		var logs bytes.Buffer
		cmd.Stderr = &logs
		cmd.Stdout = &logs
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

		httpc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
		status := func(path string) int {
			resp, err := httpc.Get("http://" + addr + path)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		deadline := time.Now().Add(30 * time.Second)
		for status("/readyz") != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("never ready; logs:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, port, _ := net.SplitHostPort(addr)
		hc := exec.Command(bin, "healthcheck")
		hc.Env = append(os.Environ(), "WS_ADDR=:"+port)
		if out, err := hc.CombinedOutput(); err != nil {
			t.Errorf("healthcheck: %v %s", err, out)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var conns []*websocket.Conn
		for range 3 {
			c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: httpc})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"op":"subscribe","id":"1","channels":["trades:*"]}`)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Read(ctx); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}

		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for i, c := range conns {
			_, _, err := c.Read(ctx)
			if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
				t.Errorf("client %d: read after SIGTERM = %v, want close 1001", i, err)
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Reason != "shutdown" {
				t.Errorf("client %d: close reason %q, want shutdown", i, ce.Reason)
			}
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("still running 15s after SIGTERM; logs:\n%s", logs.String())
		}
		t.Logf("drained 3 clients and exited in %s", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(logs.String(), `"open http://`+strings.Replace(addr, "0.0.0.0", "127.0.0.1", 1)+`/"`) {
			t.Errorf("no demo URL in the logs:\n%s", logs.String())
		}
	})
}
