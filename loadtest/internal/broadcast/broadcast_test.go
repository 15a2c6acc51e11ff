package broadcast

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
	"github.com/adred-codev/ws_poc/loadtest/internal/load"
	"github.com/adred-codev/ws_poc/loadtest/internal/scrape"
	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serverBinary is bin/ws-single from WS_SINGLE_BIN, or built from ../ws-single.
func serverBinary(t *testing.T) string {
	t.Helper()
	if p, ok := testbin.FromEnv(t, "WS_SINGLE_BIN"); ok {
		return p
	}
	return testbin.Build(t, "ws-single", t.TempDir())
}

// startServer runs the real ws-single against the broker and waits for /readyz.
func startServer(t *testing.T, bin, broker string) string {
	t.Helper()
	addr := testbin.FreeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"WS_ADDR="+addr, "WS_KAFKA_BROKERS="+broker, "WS_KAFKA_TOPICS=trades",
		"WS_LOG_LEVEL=warn", "WS_CPU_REJECT_THRESHOLD=0", "WS_SHUTDOWN_TIMEOUT=2s")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("ws-single on %s not ready in 30s; log:\n%s", addr, logs.String())
	return ""
}

// TestBroadcastAgainstWsSingle runs a short broadcast against the real server and a real
// in-process Kafka-protocol broker, and checks the generator's counts against the server's
// own /metrics.
func TestBroadcastAgainstWsSingle(t *testing.T) {
	bin := serverBinary(t)
	broker, err := dev.NewBroker(dev.BrokerConfig{Addr: "127.0.0.1:0", Topics: []string{"trades"}, Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	addr := startServer(t, bin, broker.Addr())

	const conns, channels, subs = 60, 6, 2
	out := filepath.Join(t.TempDir(), "result.json")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err = Run(ctx, []string{
		"--url", "ws://" + addr + "/ws", "--brokers", broker.Addr(),
		"--conns", strconv.Itoa(conns), "--ramp", "0", "--channels", strconv.Itoa(channels), "--subs", strconv.Itoa(subs),
		"--dist", "zipf", "--rate", "150", "--duration", "2s", "--drain", "1s",
		"--require-no-loss", "--out", out,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("broadcast: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res load.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Connections.Subscribed != conns || !res.Loss.OK {
		t.Fatalf("subscribed %d of %d, loss %+v\n%s", res.Connections.Subscribed, conns, res.Loss, stdout.String())
	}
	if res.Steps[0].Produced != 300 {
		t.Errorf("produced %d records, want 150/s x 2s = 300", res.Steps[0].Produced)
	}
	// Every subscriber got every record of its channels exactly once.
	if res.Messages.Received != res.Loss.Expected || res.Messages.Latency.Count != res.Loss.Expected {
		t.Errorf("received %d (latency n=%d), expected %d", res.Messages.Received, res.Messages.Latency.Count, res.Loss.Expected)
	}

	// The server's own count, scraped now that the clients are gone, matches the clients':
	// the messages plus, if the server counts them as deliveries, one subscribed reply each.
	snap, err := scrape.Fetch(ctx, http.DefaultClient, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	delivered := int64(snap.Sum("ws_messages_delivered_total"))
	if delivered != res.Messages.Received && delivered != res.Messages.Received+conns {
		t.Errorf("server ws_messages_delivered_total %d, clients received %d (+%d replies)", delivered, res.Messages.Received, conns)
	}
	if got := res.Server.Peak.Connections; got != conns {
		t.Errorf("server ws_connections at peak %v, want %d", got, conns)
	}
	if res.Server.RSSPerConnBytes <= 0 || res.Server.CPUPerMessageUs <= 0 {
		t.Errorf("server figures %+v, want RSS per connection and CPU per message", res.Server)
	}
	for _, want := range []string{"LOSS OK", "handshake", "step 0"} {
		if !bytes.Contains(stdout.Bytes(), []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
	if !bytes.Contains(stderr.Bytes(), []byte("msgs/s")) {
		t.Errorf("no progress on stderr: %q", stderr.String())
	}
}
