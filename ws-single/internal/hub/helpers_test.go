package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// fakeConn records what the hub writes. With gate set its socket is full:
// Write keeps the lines back and reports them left over, and each Flush waits
// for a value on gate (or its close) before the lines arrive; flushErr makes
// Flush fail instead; open (set later, under mu) makes the socket take
// everything again. With chunk set, a Write takes at most chunk messages, as
// the server's does once its cork holds a chunk's worth.
type fakeConn struct {
	mu       sync.Mutex
	lines    []string
	held     []string
	batches  int
	chunk    int
	open     bool
	gate     chan struct{}
	flushErr error
	overflow chan struct{}
	once     sync.Once
}

func newFakeConn() *fakeConn { return &fakeConn{overflow: make(chan struct{})} }

func (f *fakeConn) Write(msgs []*protocol.Message) (Written, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches++
	if f.chunk > 0 && len(msgs) > f.chunk {
		msgs = msgs[:f.chunk]
	}
	for _, m := range msgs {
		f.held = append(f.held, string(m.Wire))
	}
	w := Written{Lines: len(msgs), Frames: len(msgs)}
	if f.gate != nil && !f.open {
		return w, false, nil
	}
	f.lines, f.held = append(f.lines, f.held...), nil
	return w, true, nil
}

func (f *fakeConn) Flush() error {
	<-f.gate
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flushErr != nil {
		f.held = nil
		return f.flushErr
	}
	f.lines, f.held = append(f.lines, f.held...), nil
	return nil
}

func (f *fakeConn) Overflow() { f.once.Do(func() { close(f.overflow) }) }

// writes returns how many times the hub called Write.
func (f *fakeConn) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches
}

func (f *fakeConn) snapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

// waitLines waits until f holds n lines and returns them.
func (f *fakeConn) waitLines(t *testing.T, n int) []string {
	t.Helper()
	await.True(t, 5*time.Second, func() bool { return len(f.snapshot()) >= n }, fmt.Sprintf("%d lines", n))
	return f.snapshot()
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

type fixture struct {
	hist *history.History
	h    *Hub
	m    *metrics.Metrics
	ctx  context.Context
}

func start(t *testing.T, cfg Config) *fixture {
	t.Helper()
	return startWith(t, cfg, newHistory(t), nil)
}

// startWith starts a hub on hist, reading Kafka with rd.
func startWith(t *testing.T, cfg Config, hist *history.History, rd Reader) *fixture {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "test"}, metrics.Labels{})
	h, err := New(cfg, hist, rd, m, zap.NewNop())
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	return &fixture{h: h, m: m, ctx: ctx, hist: hist}
}

func (f *fixture) client(t *testing.T, conn Conn) *Client {
	t.Helper()
	c := NewClient(conn)
	if err := f.h.Register(f.ctx, c); err != nil {
		t.Fatalf("Register() = %v", err)
	}
	t.Cleanup(func() {
		_ = f.h.Unregister(context.Background(), c)
		c.Wait()
	})
	return c
}

// heldAndOpen registers two clients subscribed to "t": one on held, a socket that
// takes nothing until its gate is closed, and one on open, which keeps pace. It
// returns once open has read its subscribe reply, with the held client.
func (f *fixture) heldAndOpen(t *testing.T) (held, open *fakeConn, c *Client) {
	t.Helper()
	held, open = newFakeConn(), newFakeConn()
	held.gate = make(chan struct{})
	c, co := f.client(t, held), f.client(t, open)
	f.do(t, c, protocol.OpSubscribe, "", "t")
	f.do(t, co, protocol.OpSubscribe, "", "t")
	open.waitLines(t, 1)
	return held, open, c
}

func (f *fixture) do(t *testing.T, c *Client, op protocol.Op, id string, channels ...string) {
	t.Helper()
	req := protocol.Request{Op: op, ID: id, HasID: id != "", Channels: channels}
	if err := f.h.Handle(f.ctx, c, req); err != nil {
		t.Fatalf("Handle() = %v", err)
	}
}

func (f *fixture) publish(t *testing.T, topic, channel string, n int) {
	t.Helper()
	if err := f.h.Publish(f.ctx, &protocol.Message{Channel: channel, Topic: topic, Wire: []byte(fmt.Sprintf("%s#%d", channel, n))}); err != nil {
		t.Fatalf("Publish() = %v", err)
	}
}

// waitPending waits, inside a synctest bubble, until the hub is idle and
// checks that c has n messages pending.
func waitPending(t *testing.T, c *Client, n int) {
	t.Helper()
	synctest.Wait()
	if got := pending(c); got != n {
		t.Fatalf("pending = %d, want %d", got, n)
	}
}
