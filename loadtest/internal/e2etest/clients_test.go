package e2etest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/syncbuf"
	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// uniqueKey returns a record key no other test or run uses.
func uniqueKey(what string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return what + "-" + hex.EncodeToString(b)
}

// newProducer returns a sarama producer on broker, closed at cleanup.
func newProducer(t *testing.T, broker string) sarama.SyncProducer {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	p, err := sarama.NewSyncProducer([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func produce(t *testing.T, p sarama.SyncProducer, topic, key, value string) {
	t.Helper()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value)}); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// wsClient is a coder/websocket connection that splits frames into protocol objects.
type wsClient struct {
	conn *websocket.Conn
}

func dialWS(ctx context.Context, t *testing.T, url string) *wsClient {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	conn.SetReadLimit(16 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &wsClient{conn: conn}
}

func (c *wsClient) send(ctx context.Context, t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntil reads objects until match accepts one. A read that fails ends the
// connection, so this is for the end of a client's life or when failure ends the test.
func (c *wsClient) readUntil(ctx context.Context, t *testing.T, what string, match func(conform.Envelope) bool) conform.Envelope {
	t.Helper()
	e, err := c.next(ctx, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return e
}

// next reads objects until match accepts one; error replies and malformed frames fail.
// It is safe to call from a goroutine other than the test's.
func (c *wsClient) next(ctx context.Context, match func(conform.Envelope) bool) (conform.Envelope, error) {
	for {
		typ, frame, err := c.conn.Read(ctx)
		if err != nil {
			return conform.Envelope{}, err
		}
		if typ != websocket.MessageText {
			return conform.Envelope{}, fmt.Errorf("binary frame from the server")
		}
		envs, err := conform.SplitFrame(frame)
		if err != nil {
			return conform.Envelope{}, fmt.Errorf("frame %q: %w", frame, err)
		}
		for _, e := range envs {
			if e.Op == "error" {
				return conform.Envelope{}, fmt.Errorf("error reply: %s", e.Raw)
			}
			if match(e) {
				return e, nil
			}
		}
	}
}

func (c *wsClient) subscribe(ctx context.Context, t *testing.T, channels ...string) {
	t.Helper()
	c.send(ctx, t, map[string]any{"op": "subscribe", "id": "sub", "channels": channels})
	c.readUntil(ctx, t, "subscribed", func(e conform.Envelope) bool { return e.Op == "subscribed" && e.IDIs("sub") })
}

// e2eDir is loadtest/e2e, where the Node scripts and their node_modules live.
func e2eDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testbin.RepoRoot(t), "loadtest", "e2e")
	for _, m := range []string{"ws", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m, "package.json")); err != nil {
			t.Fatalf("loadtest/e2e/node_modules/%s is missing (%v): run `npm ci` in loadtest/e2e (.ci/run does)", m, err)
		}
	}
	return dir
}

// TestNodeWSClient: the npm ws package subscribes, a record produced to Kafka reaches it.
func TestNodeWSClient(t *testing.T) {
	node := requireTool(t, "node", "install Node.js 20+ (the Debian package nodejs)")
	dir := e2eDir(t)
	broker := startBroker(t)
	srv := startServer(t, "ws-single", binary(t, "WS_SINGLE_BIN", "ws-single"), broker)
	prod := newProducer(t, broker)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := uniqueKey("node")
	channel := "trades:" + key
	out, wait := startNode(ctx, t, node, dir, "ws-client.mjs", srv.wsURL(), channel, "20000")
	if _, err := out.waitLine(ctx, func(l string) bool { return l == "READY" }); err != nil {
		t.Fatalf("node ws client never subscribed: %v\n%s", err, wait())
	}
	value := fmt.Sprintf(`{"price":"42.5","key":%q}`, key)
	produce(t, prod, "trades", key, value)
	if msg := wait(); msg != "" {
		t.Fatalf("node ws client: %s\nstdout:\n%s", msg, out.all())
	}
	line, err := out.waitLine(ctx, func(l string) bool { return len(l) > 0 && l[0] == '{' })
	if err != nil {
		t.Fatalf("no message printed: %v\n%s", err, out.all())
	}
	e, err := conform.ParseLine([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if e.Op != "message" || e.Channel != channel || e.Topic != "trades" || string(e.Data) != value {
		t.Fatalf("node received %s, want a message on %s with data %s", line, channel, value)
	}
}

// requireBrowser returns node, after checking that the headless Chromium playwright-core
// drives is there (CHROMIUM_PATH, else /usr/bin/chromium, as the scripts read it); missing,
// the test fails: .ci/run installs both.
func requireBrowser(t *testing.T) string {
	t.Helper()
	node := requireTool(t, "node", "install Node.js 20+ (the Debian package nodejs)")
	chromium := os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v: apt-get install chromium (.ci/run does)", chromium, err)
	}
	return node
}

// TestChromiumDemoPage: headless Chromium opens the demo page at /, subscribes through
// the page and shows live messages; then the page's drop button closes its socket and the
// page resumes from its positions, showing the messages it recovered and none twice.
func TestChromiumDemoPage(t *testing.T) {
	node := requireBrowser(t)
	dir := e2eDir(t)
	broker := startBroker(t)
	srv := startServer(t, "ws-single", binary(t, "WS_SINGLE_BIN", "ws-single"), broker)
	prod := newProducer(t, broker)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := uniqueKey("browser")
	channel := "trades:" + key
	tmp := t.TempDir()
	shot := filepath.Join(tmp, "demo-page.png")
	out, wait := startNode(ctx, t, node, dir, "browser.mjs", srv.httpURL(), channel, key, shot, filepath.Join(tmp, "profile"), "40000")
	if _, err := out.waitLine(ctx, func(l string) bool { return l == "READY" }); err != nil {
		t.Fatalf("browser never subscribed: %v\n%s", err, wait())
	}
	// Keep records flowing until the page has shown some, as a live feed would.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			v := fmt.Sprintf(`{"price":"%d.5","size":"0.25","side":"buy","key":%q}`, 100+i, key)
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "trades", Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(v)}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	msg := wait()
	close(stop)
	<-done
	if msg != "" {
		t.Fatalf("browser: %s\nstdout:\n%s", msg, out.all())
	}
	if _, err := os.Stat(shot); err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if keep := os.Getenv("E2E_SCREENSHOT_DIR"); keep != "" {
		b, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(filepath.Join(keep, "demo-page.png"), b, 0o644)
		}
		if err != nil {
			t.Fatalf("keep screenshot: %v", err)
		}
	}
	t.Logf("page: %s (screenshot %s)", out.all(), shot)
}

// startNode runs a Node script in dir, in its own process group so that Chromium and
// its helpers die with it. wait blocks until it exits and returns "" on success or what
// went wrong, with its stderr.
func startNode(ctx context.Context, t *testing.T, node, dir string, script string, args ...string) (*lineWaiter, func() string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Bounds how long Wait waits for output copying once the process is gone.
	cmd.WaitDelay = 5 * time.Second
	out := newLineWaiter()
	var stderr syncbuf.Buffer
	cmd.Stdout = out
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		out.Close()
		exited <- err
	}()
	var result *string
	wait := func() string {
		if result != nil {
			return *result
		}
		err := <-exited
		s := ""
		if err != nil {
			s = fmt.Sprintf("node %s: %v\nstderr:\n%s", script, err, stderr.String())
		}
		result = &s
		return s
	}
	t.Cleanup(func() {
		// The whole group: a Chromium left behind would outlive the test.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		wait()
	})
	return out, wait
}
