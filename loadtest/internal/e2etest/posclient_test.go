package e2etest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
)

// posClient is a client that keeps its positions as docs/PROTOCOL.md tells a client to:
// per topic and partition the highest offset among the messages, skipped lines, marks,
// recovered and gap lines it has read (and the positions of its subscribed replies). A
// reader goroutine reads every frame as it comes.
type posClient struct {
	ws      *wsClient // written by the test, read only by the reader goroutine
	cancel  context.CancelFunc
	done    chan struct{}
	changed chan struct{} // size 1: coalesced wake-up

	mu     sync.Mutex
	lines  []conform.Envelope
	pos    map[string]map[int32]int64
	epochs map[string]string
	err    error // why reading stopped, set before done closes
}

func dialPositioned(ctx context.Context, t *testing.T, url string) *posClient {
	t.Helper()
	ws := dialWS(ctx, t, url)
	rctx, cancel := context.WithCancel(context.Background())
	c := &posClient{ws: ws, cancel: cancel, done: make(chan struct{}), changed: make(chan struct{}, 1),
		pos: map[string]map[int32]int64{}, epochs: map[string]string{}}
	go c.read(rctx)
	t.Cleanup(func() {
		_ = ws.conn.CloseNow()
		cancel()
		<-c.done
	})
	return c
}

// posFields are the fields of the positions protocol a client acts on.
type posFields struct {
	Recovered        *bool             `json:"recovered"`
	Source           string            `json:"source"`
	Reason           string            `json:"reason"`
	Epochs           map[string]string `json:"epochs"`
	Positions        json.RawMessage   `json:"positions"`
	ReconnectAfterMS *int64            `json:"reconnect_after_ms"`
	To               *int64            `json:"to"`
	topicPos         map[string]map[int32]int64
}

func fieldsOf(e conform.Envelope) (posFields, error) {
	var f posFields
	if err := json.Unmarshal(e.Raw, &f); err != nil {
		return f, fmt.Errorf("%s: %w", e.Raw, err)
	}
	if len(f.Positions) > 0 && e.Op != "mark" {
		if err := json.Unmarshal(f.Positions, &f.topicPos); err != nil {
			return f, fmt.Errorf("positions of %s: %w", e.Raw, err)
		}
	}
	return f, nil
}

func (c *posClient) read(ctx context.Context) {
	defer close(c.done)
	for {
		typ, frame, err := c.ws.conn.Read(ctx)
		if err == nil && typ != websocket.MessageText {
			err = errors.New("binary frame from the server")
		}
		var envs []conform.Envelope
		if err == nil {
			envs, err = conform.SplitFrame(frame)
		}
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.mu.Unlock()
			c.wake()
			return
		}
		for _, e := range envs {
			c.lines = append(c.lines, e)
			c.track(e)
		}
		c.mu.Unlock()
		c.wake()
	}
}

// track updates the positions with one line; c.mu is held.
func (c *posClient) track(e conform.Envelope) {
	raise := func(topic string, p int32, off int64) {
		m := c.pos[topic]
		if m == nil {
			m = map[int32]int64{}
			c.pos[topic] = m
		}
		if cur, ok := m[p]; !ok || off > cur {
			m[p] = off
		}
	}
	switch e.Op {
	case "message", "skipped":
		if e.Partition != nil && e.Offset != nil {
			raise(e.Topic, *e.Partition, *e.Offset)
		}
	case "mark":
		var m struct {
			Positions map[int32]int64 `json:"positions"`
		}
		if json.Unmarshal(e.Raw, &m) == nil {
			for p, off := range m.Positions {
				raise(e.Topic, p, off)
			}
		}
	case "gap":
		if f, err := fieldsOf(e); err == nil && f.To != nil && e.Partition != nil {
			raise(e.Topic, *e.Partition, *f.To)
		}
	case "subscribed", "recovered":
		f, err := fieldsOf(e)
		if err != nil {
			return
		}
		for topic, epoch := range f.Epochs {
			c.epochs[topic] = epoch
		}
		for topic, parts := range f.topicPos {
			for p, off := range parts {
				raise(topic, p, off)
			}
		}
	}
}

func (c *posClient) wake() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// waitLine returns the first line match accepts, waiting for it; error replies fail.
func (c *posClient) waitLine(ctx context.Context, t *testing.T, what string, match func(conform.Envelope) bool) conform.Envelope {
	t.Helper()
	for {
		c.mu.Lock()
		for _, e := range c.lines {
			if e.Op == "error" {
				c.mu.Unlock()
				t.Fatalf("waiting for %s: error reply %s", what, e.Raw)
			}
			if match(e) {
				c.mu.Unlock()
				return e
			}
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for %s: connection ended: %v", what, err)
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
}

// waitCount waits until n lines match.
func (c *posClient) waitCount(ctx context.Context, t *testing.T, what string, n int, match func(conform.Envelope) bool) {
	t.Helper()
	for {
		c.mu.Lock()
		got := 0
		for _, e := range c.lines {
			if match(e) {
				got++
			}
		}
		err := c.err
		c.mu.Unlock()
		if got >= n {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %d %s (have %d): connection ended: %v", n, what, got, err)
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %d %s (have %d): %v", n, what, got, ctx.Err())
		}
	}
}

// ended waits for the connection to end and returns why.
func (c *posClient) ended(ctx context.Context, t *testing.T) error {
	t.Helper()
	select {
	case <-c.done:
	case <-ctx.Done():
		t.Fatalf("the connection did not end: %v", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *posClient) snapshot() (epochs map[string]string, pos map[string]map[int32]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	epochs = map[string]string{}
	for k, v := range c.epochs {
		epochs[k] = v
	}
	pos = map[string]map[int32]int64{}
	for topic, parts := range c.pos {
		pos[topic] = map[int32]int64{}
		for p, off := range parts {
			pos[topic][p] = off
		}
	}
	return epochs, pos
}

func (c *posClient) all() []conform.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

// subscribePositioned subscribes with positioned and waits for the reply.
func (c *posClient) subscribePositioned(ctx context.Context, t *testing.T, id string, channels ...string) posFields {
	t.Helper()
	c.ws.send(ctx, t, map[string]any{"op": "subscribe", "id": id, "channels": channels, "positioned": true})
	r := c.waitLine(ctx, t, "the subscribed reply", func(e conform.Envelope) bool { return e.Op == "subscribed" && e.IDIs(id) })
	f, err := fieldsOf(r)
	if err != nil {
		t.Fatal(err)
	}
	if f.Epochs["trades"] == "" || len(f.topicPos["trades"]) == 0 {
		t.Fatalf("positioned subscribe: no epoch or positions of trades: %s", r.Raw)
	}
	return f
}

// resume subscribes with a resume by positions and waits for its recovered line, which
// must say recovered.
func (c *posClient) resume(ctx context.Context, t *testing.T, id string, channels []string, epochs map[string]string, pos map[string]map[int32]int64) posFields {
	t.Helper()
	c.ws.send(ctx, t, map[string]any{"op": "subscribe", "id": id, "channels": channels,
		"resume": map[string]any{"epochs": epochs, "positions": pos}})
	rec := c.waitLine(ctx, t, "the recovered line", func(e conform.Envelope) bool { return e.Op == "recovered" && e.IDIs(id) })
	f, err := fieldsOf(rec)
	if err != nil {
		t.Fatal(err)
	}
	if f.Recovered == nil || !*f.Recovered {
		t.Fatalf("resume from %v (epochs %v): %s", pos, epochs, rec.Raw)
	}
	return f
}
