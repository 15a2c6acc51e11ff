package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

// errGone is a fake socket's failure once it is closed.
var errGone = errors.New("fake: connection closed")

// fakeConn is a hub.Conn over a pretend socket: a Write takes up to chunk messages (all
// when 0), one frame each, and the socket takes them at once unless it is full. With stall
// set the socket is full until stall is closed (Flush gives up after timeout, if set);
// with lag it takes a Flush's bytes after lag; with grant each Flush waits for one value.
// Overflow and close end the connection: a waiting Flush fails, later Writes fail.
type fakeConn struct {
	chunk   int
	stall   chan struct{}
	lag     time.Duration
	grant   chan struct{}
	timeout time.Duration

	mu         sync.Mutex
	lines      []string   // on the socket
	writes     [][]string // socket writes, their lines
	held       []string   // taken by Write, waiting for Flush
	overflowed bool
	closed     bool
	closedCh   chan struct{}
}

func newFake() *fakeConn { return &fakeConn{closedCh: make(chan struct{})} }

func (f *fakeConn) Write(msgs []*protocol.Message) (w Written, done bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Written{}, false, errGone
	}
	n := len(msgs)
	if f.chunk > 0 {
		n = min(n, f.chunk)
	}
	for _, m := range msgs[:n] {
		f.held = append(f.held, string(m.Wire))
		w.Bytes += len(m.Wire)
		if w.First.IsZero() && m.Topic != "" {
			w.First = m.Time
		}
	}
	w.Lines, w.Frames = n, n
	if f.full() {
		return w, false, nil
	}
	f.sendLocked()
	return w, true, nil
}

// full reports whether the socket does not take a write at once.
func (f *fakeConn) full() bool {
	if f.lag > 0 || f.grant != nil {
		return true
	}
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

func (f *fakeConn) Flush() error {
	var timeout <-chan time.Time
	if f.timeout > 0 {
		t := time.NewTimer(f.timeout)
		defer t.Stop()
		timeout = t.C
	}
	switch {
	case f.grant != nil:
		select {
		case <-f.grant:
		case <-f.closedCh:
			return errGone
		}
	case f.lag > 0:
		select {
		case <-time.After(f.lag):
		case <-f.closedCh:
			return errGone
		}
	case f.stall != nil:
		select {
		case <-f.stall:
		case <-f.closedCh:
			return errGone
		case <-timeout:
			f.close()
			return fmt.Errorf("fake: flush: %w", os.ErrDeadlineExceeded)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sendLocked()
	return nil
}

func (f *fakeConn) Overflow() {
	f.mu.Lock()
	f.overflowed = true
	f.mu.Unlock()
	f.close()
}

// close is the connection closing (the server's finish): a waiting Flush fails.
func (f *fakeConn) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.closedCh)
	}
}

func (f *fakeConn) sendLocked() {
	if len(f.held) == 0 {
		return
	}
	f.lines = append(f.lines, f.held...)
	f.writes = append(f.writes, f.held)
	f.held = nil
}

// got returns the lines on the socket so far.
func (f *fakeConn) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lines)
}

// socketWrites returns the socket writes so far.
func (f *fakeConn) socketWrites() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

func (f *fakeConn) isOverflowed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.overflowed
}

func testConfig() Config {
	return Config{Shards: 3, MaxSubscriptions: 4, SendQueueMessages: 1000, SendQueueBytes: 1 << 20, WriteTimeout: time.Second}
}

// newHistory returns an empty history of the topics the tests use.
func newHistory(t testing.TB) *history.History {
	t.Helper()
	hist, err := history.New(history.Config{Records: 1000, Bytes: 1 << 20}, []string{"t", "trades"})
	if err != nil {
		t.Fatal(err)
	}
	return hist
}

func startHub(t testing.TB, cfg Config) (*Hub, *metrics.Metrics) {
	t.Helper()
	return startHubWith(t, cfg, newHistory(t), nil)
}

// startHubWith starts a hub on hist, reading Kafka with rd.
func startHubWith(t testing.TB, cfg Config, hist *history.History, rd Reader) (*Hub, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "ws-multi"}, metrics.Labels{})
	h, err := New(cfg, hist, rd, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, m
}

// register registers a client over f.
func register(t testing.TB, h *Hub, f Conn) *Client {
	t.Helper()
	c := NewClient(f)
	if err := h.Register(bg, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// finish ends c as the server does: the connection closes, then Unregister and Wait.
func finish(t testing.TB, h *Hub, c *Client, f *fakeConn) {
	t.Helper()
	f.close()
	if err := h.Unregister(bg, c); err != nil {
		t.Fatal(err)
	}
	c.Wait()
}

func handle(t testing.TB, h *Hub, c *Client, req protocol.Request) {
	t.Helper()
	if err := h.Handle(bg, c, req); err != nil {
		t.Fatal(err)
	}
}

func publish(t testing.TB, h *Hub, m *protocol.Message) {
	t.Helper()
	if err := h.Publish(bg, m); err != nil {
		t.Fatal(err)
	}
}

func record(topic, key string, offset int64) *protocol.Message {
	ch, _ := protocol.RecordChannel(topic, []byte(key), nil, 0)
	return protocol.EncodeRecord(protocol.Record{Channel: ch, Topic: topic, Offset: offset, Value: []byte(`{"o":` + fmt.Sprint(offset) + `}`), Timestamp: time.Now()})
}

func sub(op protocol.Op, id string, chans ...string) protocol.Request {
	return protocol.Request{Op: op, ID: id, HasID: true, Channels: chans}
}

func waitLines(t testing.TB, f *fakeConn, n int) []string {
	t.Helper()
	await.True(t, 5*time.Second, func() bool { return len(f.got()) >= n }, fmt.Sprintf("%d lines", n))
	return f.got()
}

// syncClient waits until c's shard handled every record published before: once the record
// queue is empty the shard has taken the last record, and Sync returns once c's queue is
// out.
func syncClient(t testing.TB, h *Hub, c *Client) {
	t.Helper()
	await.True(t, 5*time.Second, func() bool { return len(c.shard.pub) == 0 }, "record queue drained")
	if err := h.Sync(bg, c); err != nil {
		t.Fatal(err)
	}
}
