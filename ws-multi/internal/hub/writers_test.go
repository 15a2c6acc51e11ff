package hub

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// gatedConn is a fakeConn whose every Write waits for a token on gate (or for gate to be
// closed), and counts the Writes in progress across conns in n.
type gatedConn struct {
	fakeConn
	gate   chan struct{}
	n      *concurrency
	opened sync.Once
}

// open lets every later Write through.
func (c *gatedConn) open() { c.opened.Do(func() { close(c.gate) }) }

// concurrency counts Write calls in progress and their peak.
type concurrency struct{ cur, peak atomic.Int64 }

func (c *gatedConn) Write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	now := c.n.cur.Add(1)
	for {
		peak := c.n.peak.Load()
		if now <= peak || c.n.peak.CompareAndSwap(peak, now) {
			break
		}
	}
	defer c.n.cur.Add(-1)
	select {
	case <-c.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.fakeConn.Write(ctx, typ, p)
}

// gated returns n gated connections sharing one concurrency count; release opens every gate,
// and the test's cleanup does too, so a failed test cannot hang on a stalled writer.
func gated(t *testing.T, n int) ([]*gatedConn, *concurrency, func()) {
	var cc concurrency
	conns := make([]*gatedConn, n)
	for i := range conns {
		conns[i] = &gatedConn{gate: make(chan struct{}), n: &cc}
	}
	release := func() {
		for _, c := range conns {
			c.open()
		}
	}
	t.Cleanup(release)
	return conns, &cc, release
}

// slotConfig is a one-shard hub with the given writer slots and stall time.
func slotConfig(slots int, stall time.Duration) Config {
	cfg := testConfig()
	cfg.Shards, cfg.WriteTimeout = 1, time.Minute
	cfg.maxWriters, cfg.stallAfter = slots, stall
	return cfg
}

// subscribeGated subscribes c to "t:*" and lets its reply through.
func subscribeGated(t *testing.T, c *Client, g *gatedConn) {
	t.Helper()
	c.Request(sub(protocol.OpSubscribe, "1", "t:*"))
	g.gate <- struct{}{}
	waitLines(t, &g.fakeConn, 1)
}

// TestWriterSlotsBoundConcurrentBatches: with two writer slots and six clients whose
// sockets are stalled, only two batches are out at a time; the others wait their turn and
// every client still gets every record, in order.
func TestWriterSlotsBoundConcurrentBatches(t *testing.T) {
	h, _ := startHub(t, slotConfig(2, time.Minute))
	conns, n, release := gated(t, 6)
	clients := make([]*Client, len(conns))
	for i, g := range conns {
		clients[i] = h.Register(g)
		subscribeGated(t, clients[i], g)
	}
	n.peak.Store(0)
	for i := range 2 {
		if err := h.Publish(context.Background(), record("t", "k", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two batches out", func() bool { return n.cur.Load() == 2 })
	time.Sleep(20 * time.Millisecond)
	if got := n.cur.Load(); got != 2 {
		t.Fatalf("%d batches out with two slots", got)
	}
	// Let writes through one at a time until every client has both records.
	deadline := time.Now().Add(5 * time.Second)
	for done := 0; done < len(conns); {
		done = 0
		for _, g := range conns {
			if len(g.lines()) >= 3 {
				done++
				continue
			}
			select {
			case g.gate <- struct{}{}:
			case <-time.After(time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d clients got both records", done, len(conns))
		}
	}
	if got := n.peak.Load(); got != 2 {
		t.Errorf("peak concurrent batches = %d, want 2 (the writer slots)", got)
	}
	for i, g := range conns {
		lines := g.lines()
		if !strings.Contains(lines[1], `"offset":0,`) || !strings.Contains(lines[2], `"offset":1,`) {
			t.Errorf("client %d lines = %q", i, lines)
		}
	}
	release()
	for _, c := range clients {
		c.Finish(ReasonClient)
	}
}

// TestStalledBatchFreesItsSlot: one writer slot, held by a client whose socket does not
// drain. After stallAfter its batch stops counting and the next client is served while the
// first is still stuck.
func TestStalledBatchFreesItsSlot(t *testing.T) {
	h, _ := startHub(t, slotConfig(1, 20*time.Millisecond))
	conns, _, release := gated(t, 2)
	stuck, healthy := conns[0], conns[1]
	cs, ch := h.Register(stuck), h.Register(healthy)
	subscribeGated(t, cs, stuck)
	if err := h.Publish(context.Background(), record("t", "k", 0)); err != nil { // stuck takes the only slot
		t.Fatal(err)
	}
	eventually(t, "stuck's record is out", func() bool {
		var out bool
		inShard(cs, func() { out = cs.slot >= 0 && cs.inflight == 1 })
		return out
	})
	// The reply needs a slot: it comes once the stalled batch stops counting.
	healthy.open()
	ch.Request(sub(protocol.OpSubscribe, "1", "t:*"))
	waitLines(t, &healthy.fakeConn, 1)
	if err := h.Publish(context.Background(), record("t", "k", 1)); err != nil {
		t.Fatal(err)
	}
	if got := waitLines(t, &healthy.fakeConn, 2); !strings.Contains(got[1], `"offset":1,`) {
		t.Fatalf("healthy lines = %q", got)
	}
	if got := stuck.lines(); len(got) != 1 {
		t.Fatalf("stuck client wrote %q while its socket was stalled", got)
	}
	stuck.open()
	if got := waitLines(t, &stuck.fakeConn, 3); !strings.Contains(got[1], `"offset":0,`) || !strings.Contains(got[2], `"offset":1,`) {
		t.Fatalf("stuck lines after it drained = %q", got)
	}
	release()
	cs.Finish(ReasonClient)
	ch.Finish(ReasonClient)
}

// TestFinishEndsWriterParkedForSlot: a client whose writer finished a batch while another
// waited for the only slot parks at the end of the line; Finish ends that writer and the
// other client still gets its records.
func TestFinishEndsWriterParkedForSlot(t *testing.T) {
	h, _ := startHub(t, slotConfig(1, time.Minute))
	conns, _, release := gated(t, 2)
	a, b := conns[0], conns[1]
	ca, cb := h.Register(a), h.Register(b)
	subscribeGated(t, ca, a)
	subscribeGated(t, cb, b)
	state := func(c *Client) (queued, waiting bool, slot int) {
		inShard(c, func() { queued, waiting, slot = c.queued, c.waiting, c.slot })
		return
	}
	publish := func(off int64) {
		if err := h.Publish(context.Background(), record("t", "k", off)); err != nil {
			t.Fatal(err)
		}
	}
	publish(0) // a or b takes the slot (gated), the other waits for it
	first, second, cFirst, cSecond := a, b, ca, cb
	eventually(t, "one waits for the slot", func() bool {
		qa, _, _ := state(ca)
		qb, _, _ := state(cb)
		if qa {
			first, second, cFirst, cSecond = b, a, cb, ca
		}
		return qa || qb
	})
	first.gate <- struct{}{} // first done; second takes the slot (gated)
	eventually(t, "second holds the slot", func() bool { _, _, slot := state(cSecond); return slot >= 0 })
	publish(1)
	eventually(t, "first waits for the slot", func() bool { q, _, _ := state(cFirst); return q })
	second.gate <- struct{}{} // second done with 0; first takes the slot, second's writer parks with 1
	eventually(t, "second's writer parks", func() bool { _, w, _ := state(cSecond); return w })

	finished := make(chan Reason, 1)
	go func() { finished <- cSecond.Finish(ReasonClient) }()
	select {
	case r := <-finished:
		if r != ReasonClient {
			t.Errorf("reason = %v, want client", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Finish hung on a writer parked for a slot")
	}
	if got := second.lines(); len(got) != 2 {
		t.Fatalf("finished client's lines = %q", got)
	}
	release()
	if got := waitLines(t, &first.fakeConn, 3); !strings.Contains(got[2], `"offset":1,`) {
		t.Fatalf("first's lines = %q", got)
	}
	cFirst.Finish(ReasonClient)
}
