package hub

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeConn records written frames. It corks like the server's connections: frames written
// while corked are held and reach the "socket" (frames, and one entry in writes per socket
// write) at TryUncork. With stall set the socket is full: TryUncork leaves everything held and
// Uncork waits until stall is closed, the connection closes or the timeout passes. With lag
// set the socket is slow but drains: TryUncork takes nothing, and Uncork takes everything
// after lag. With grant set TryUncork takes nothing and each Uncork waits for one value from
// grant, then takes everything.
type fakeConn struct {
	mu        sync.Mutex
	frames    []string // frames on the socket
	writes    []string // socket writes, their frames joined by "|"
	held      []string // corked, or left over by TryUncork
	corked    bool
	corks     int
	stall     chan struct{}
	lag       time.Duration
	grant     chan struct{}
	closeCode websocket.StatusCode
	closeText string
	closed    bool
	closedCh  chan struct{} // closed with closed; made lazily under mu
	pings     int           // Ping calls
}

func (f *fakeConn) Write(_ context.Context, _ websocket.MessageType, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("fake: write after close")
	}
	f.held = append(f.held, string(p)) // copy: the hub reuses frame buffers
	if !f.corked && !f.stalled() {
		f.sendLocked()
	}
	return nil
}

func (f *fakeConn) Cork() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.corked = true
	f.corks++
}

func (f *fakeConn) TryUncork() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.corked = false
	if f.stalled() || ((f.lag > 0 || f.grant != nil) && len(f.held) > 0) {
		return false, nil
	}
	f.sendLocked()
	return true, nil
}

func (f *fakeConn) Uncork(timeout time.Duration) error {
	f.mu.Lock()
	f.corked = false
	closed := f.closedLocked()
	f.mu.Unlock()
	if f.grant != nil {
		select {
		case <-f.grant:
		case <-closed:
			return fmt.Errorf("fake: uncork: %w", net.ErrClosed)
		}
	}
	if f.lag > 0 {
		t := time.NewTimer(f.lag)
		defer t.Stop()
		select {
		case <-t.C:
		case <-closed:
			return fmt.Errorf("fake: uncork: %w", net.ErrClosed)
		}
	}
	if f.stall != nil {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-f.stall:
		case <-closed:
			return fmt.Errorf("fake: uncork: %w", net.ErrClosed)
		case <-t.C:
			return fmt.Errorf("fake: uncork: %w", os.ErrDeadlineExceeded)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sendLocked()
	return nil
}

// stalled reports whether the socket is full (stall set and not yet closed).
func (f *fakeConn) stalled() bool {
	if f.stall == nil {
		return false
	}
	select {
	case <-f.stall:
		return false
	default:
		return true
	}
}

func (f *fakeConn) sendLocked() {
	if len(f.held) == 0 {
		return
	}
	f.frames = append(f.frames, f.held...)
	f.writes = append(f.writes, strings.Join(f.held, "|"))
	f.held = nil
}

func (f *fakeConn) closedLocked() chan struct{} {
	if f.closedCh == nil {
		f.closedCh = make(chan struct{})
		if f.closed {
			close(f.closedCh)
		}
	}
	return f.closedCh
}

func (f *fakeConn) Ping(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pings++
	return nil
}

func (f *fakeConn) Close(code websocket.StatusCode, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed, f.closeCode, f.closeText = true, code, text
		if f.closedCh != nil {
			close(f.closedCh)
		}
	}
	return nil
}

func (f *fakeConn) CloseNow() error { return f.Close(-1, "") }

// Buffered returns the bytes held: corked, or left over by a stalled socket.
func (f *fakeConn) Buffered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, h := range f.held {
		n += len(h)
	}
	return n
}

// socketWrites returns the socket writes so far.
func (f *fakeConn) socketWrites() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

func (f *fakeConn) snapshot() (frames []string, code websocket.StatusCode, text string, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.frames), f.closeCode, f.closeText, f.closed
}

// lines returns every line written so far, frames split on '\n'.
func (f *fakeConn) lines() []string {
	frames, _, _, _ := f.snapshot()
	var out []string
	for _, fr := range frames {
		out = append(out, strings.Split(fr, "\n")...)
	}
	return out
}

func testConfig() Config {
	return Config{
		Shards: 3, MaxSubscriptions: 4, SendQueueMessages: 1000, SendQueueBytes: 1 << 20,
		WriteTimeout: time.Second, Batch: true, BatchMaxBytes: 1024,
	}
}

func startHub(t testing.TB, cfg Config) (*Hub, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "ws-multi"})
	h, err := New(cfg, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, m
}

func record(topic, key string, offset int64) *protocol.Message {
	ch, _ := protocol.RecordChannel(topic, []byte(key), nil, 0)
	return protocol.EncodeRecord(protocol.Record{Channel: ch, Topic: topic, Offset: offset, Value: []byte(`{"o":` + fmt.Sprint(offset) + `}`), Timestamp: time.Now()})
}

func sub(op protocol.Op, id string, chans ...string) protocol.Request {
	return protocol.Request{Op: op, ID: id, HasID: true, Channels: chans}
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func waitLines(t testing.TB, f *fakeConn, n int) []string {
	t.Helper()
	eventually(t, fmt.Sprintf("%d lines", n), func() bool { return len(f.lines()) >= n })
	return f.lines()
}

// inShard runs fn in c's shard goroutine, which owns the client's queue, and waits for it.
func inShard(c *Client, fn func()) { c.shard.call(event{kind: evCall, fn: fn}) }

// queued returns c's queue length: pending plus the hand-off being flushed.
func queued(c *Client) (n int) {
	inShard(c, func() { n = len(c.pending) + c.inflight })
	return n
}

// syncClient waits until the client's shard handled every record published before: once the
// record queue is empty the shard has taken the last record, and it fans a record out
// completely before it handles the ping that follows.
func syncClient(t testing.TB, c *Client, f *fakeConn) {
	t.Helper()
	eventually(t, "record queue drained", func() bool { return len(c.shard.pub) == 0 })
	before := len(f.lines())
	c.Request(protocol.Request{Op: protocol.OpPing, ID: "sync", HasID: true})
	eventually(t, "sync pong", func() bool {
		return slices.Contains(f.lines()[before:], `{"op":"pong","id":"sync"}`)
	})
}
