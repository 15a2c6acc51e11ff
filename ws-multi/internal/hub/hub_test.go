package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

func TestSubscriptionRouting(t *testing.T) {
	h, m := startHub(t, testConfig())
	ctx := context.Background()
	exact, wild, both, none := &fakeConn{}, &fakeConn{}, &fakeConn{}, &fakeConn{}
	ce, cw, cb, cn := h.Register(exact), h.Register(wild), h.Register(both), h.Register(none)
	ce.Request(sub(protocol.OpSubscribe, "1", "trades:BTC"))
	cw.Request(sub(protocol.OpSubscribe, "1", "trades:*"))
	cb.Request(sub(protocol.OpSubscribe, "1", "trades:BTC", "trades:*"))
	cn.Request(sub(protocol.OpSubscribe, "1", "tickers:BTC"))
	for _, f := range []*fakeConn{exact, wild, both, none} {
		waitLines(t, f, 1)
	}
	if got := testutil.ToFloat64(m.Subscriptions); got != 5 {
		t.Errorf("ws_subscriptions = %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.Channels); got != 3 {
		t.Errorf("ws_channels = %v, want 3", got)
	}
	for i, r := range []*protocol.Message{record("trades", "BTC", 0), record("trades", "ETH", 1), record("trades", "", 2), record("tradesX", "BTC", 3)} {
		if err := h.Publish(ctx, r); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for _, tc := range []struct {
		name    string
		f       *fakeConn
		c       *Client
		offsets []string
	}{
		{"exact", exact, ce, []string{`"offset":0`}},
		{"wildcard", wild, cw, []string{`"offset":0`, `"offset":1`, `"offset":2`}},
		{"both gets each record once", both, cb, []string{`"offset":0`, `"offset":1`, `"offset":2`}},
		{"other topic", none, cn, nil},
	} {
		syncClient(t, tc.c, tc.f)
		var got []string
		for _, l := range tc.f.lines() {
			if strings.Contains(l, `"op":"message"`) {
				got = append(got, l[strings.Index(l, `"offset"`):strings.Index(l, `,"ts"`)])
			}
		}
		if !slices.Equal(got, tc.offsets) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.offsets)
		}
	}

	// Unsubscribe: nothing more arrives, gauges go down.
	cb.Request(sub(protocol.OpUnsubscribe, "2", "trades:BTC", "trades:*", "never"))
	syncClient(t, cb, both)
	if err := h.Publish(ctx, record("trades", "BTC", 4)); err != nil {
		t.Fatal(err)
	}
	syncClient(t, cb, both)
	l := both.lines()
	if !slices.Contains(l, `{"op":"unsubscribed","id":"2","channels":["trades:BTC","trades:*","never"]}`) {
		t.Errorf("no unsubscribed reply in %q", l)
	}
	for _, line := range l[slices.Index(l, `{"op":"unsubscribed","id":"2","channels":["trades:BTC","trades:*","never"]}`):] {
		if strings.Contains(line, `"offset":4`) {
			t.Errorf("record delivered after unsubscribe: %s", line)
		}
	}
	for _, c := range []*Client{ce, cw, cb, cn} {
		if r := c.Finish(ReasonClient); r != ReasonClient {
			t.Errorf("Finish reason = %v", r)
		}
	}
	eventually(t, "gauges back to 0", func() bool {
		return testutil.ToFloat64(m.Subscriptions) == 0 && testutil.ToFloat64(m.Channels) == 0 && h.Len() == 0
	})
}

func TestTooManySubscriptionsIsAllOrNothing(t *testing.T) {
	h, m := startHub(t, testConfig())
	f := &fakeConn{}
	c := h.Register(f)
	c.Request(sub(protocol.OpSubscribe, "1", "a", "b", "c"))
	c.Request(sub(protocol.OpSubscribe, "2", "a", "d", "e")) // d and e would make 5 > 4
	c.Request(sub(protocol.OpSubscribe, "3", "a", "b", "d")) // only d is new: 4, allowed
	lines := waitLines(t, f, 3)
	want := []string{
		`{"op":"subscribed","id":"1","channels":["a","b","c"]}`,
		`{"op":"error","id":"2","code":"too_many_subscriptions","message":"subscribe would pass the limit of 4 channels per client"}`,
		`{"op":"subscribed","id":"3","channels":["a","b","d"]}`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("replies = %q\nwant %q", lines, want)
	}
	if got := testutil.ToFloat64(m.ProtocolErrors.WithLabelValues(protocol.CodeTooManySubscriptions)); got != 1 {
		t.Errorf("too_many_subscriptions errors = %v", got)
	}
	c.Finish(ReasonClient)
}

func TestBatchingAndOrder(t *testing.T) {
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			cfg := testConfig()
			cfg.Batch = batch
			cfg.BatchMaxBytes = 300
			cfg.WriteTimeout = 5 * time.Second
			h, m := startHub(t, cfg)
			f := &fakeConn{stall: make(chan struct{})}
			c := h.Register(f)
			c.Request(sub(protocol.OpSubscribe, "1", "t:*"))
			eventually(t, "subscribed", func() bool { return testutil.ToFloat64(m.Subscriptions) == 1 })
			// The socket takes nothing from the reply on, so the records pile up behind it and
			// go out in batches.
			const n = 40
			for i := range n {
				if err := h.Publish(context.Background(), record("t", "k", int64(i))); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "records queued behind the stalled flush", func() bool {
				return queued(c) == n+1 // the records and the stalled reply
			})
			close(f.stall)
			lines := waitLines(t, f, n+1)
			frames, _, _, _ := f.snapshot()
			for i, l := range lines[1 : n+1] {
				if !strings.Contains(l, fmt.Sprintf(`"offset":%d,`, i)) {
					t.Fatalf("line %d = %s: out of order", i, l)
				}
			}
			for _, fr := range frames {
				if len(fr) > cfg.BatchMaxBytes && strings.Contains(fr, "\n") {
					t.Errorf("batched frame of %d bytes passes %d", len(fr), cfg.BatchMaxBytes)
				}
				if !batch && strings.Contains(fr, "\n") {
					t.Errorf("unbatched frame holds several lines: %q", fr)
				}
			}
			if batch && len(frames) >= len(lines) {
				t.Errorf("batching wrote %d frames for %d lines", len(frames), len(lines))
			}
			if got := testutil.ToFloat64(m.MessagesDelivered); got != n+1 { // records and the reply
				t.Errorf("delivered = %v, want %d", got, n+1)
			}
			if got := testutil.ToFloat64(m.FramesWritten); int(got) != len(frames) {
				t.Errorf("frames metric %v, wrote %d", got, len(frames))
			}
			c.Finish(ReasonClient)
		})
	}
}

func TestFrameLen(t *testing.T) {
	msg := func(n int) *protocol.Message { return &protocol.Message{Data: []byte(strings.Repeat("x", n))} }
	tests := []struct {
		name string
		msgs []*protocol.Message
		max  int
		want int
	}{
		{name: "one", msgs: []*protocol.Message{msg(10)}, max: 100, want: 1},
		{name: "all fit", msgs: []*protocol.Message{msg(10), msg(10), msg(10)}, max: 32, want: 3},
		{name: "newline counts", msgs: []*protocol.Message{msg(10), msg(10), msg(10)}, max: 31, want: 2},
		{name: "oversized goes alone", msgs: []*protocol.Message{msg(200), msg(1)}, max: 100, want: 1},
		{name: "stops before oversized", msgs: []*protocol.Message{msg(1), msg(200), msg(1)}, max: 100, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := frameLen(tt.msgs, tt.max); got != tt.want {
				t.Errorf("frameLen = %d, want %d", got, tt.want)
			}
		})
	}
	if got := string(joinLines(nil, []*protocol.Message{msg(1), msg(2)})); got != "x\nxx" {
		t.Errorf("joinLines = %q", got)
	}
}

func TestCloseAllAndShardBalance(t *testing.T) {
	h, _ := startHub(t, testConfig())
	var conns []*fakeConn
	var clients []*Client
	for range 9 {
		f := &fakeConn{}
		conns = append(conns, f)
		clients = append(clients, h.Register(f))
	}
	perShard := map[int]int{}
	for _, c := range clients {
		perShard[c.Shard()]++
	}
	if len(perShard) != 3 || perShard[0] != 3 || perShard[1] != 3 || perShard[2] != 3 {
		t.Errorf("clients per shard = %v, want 3 each", perShard)
	}
	h.CloseAll(ReasonShutdown)
	late := &fakeConn{}
	lc := h.Register(late)
	eventually(t, "late client closed", func() bool { _, _, _, closed := late.snapshot(); return closed })
	for i, c := range append(clients, lc) {
		if r := c.Finish(ReasonClient); r != ReasonShutdown {
			t.Errorf("client %d reason = %v, want shutdown", i, r)
		}
	}
	for _, f := range append(conns, late) {
		if _, code, text, _ := f.snapshot(); code != websocket.StatusGoingAway || text != "shutdown" {
			t.Errorf("closed with %d %q, want 1001 shutdown", code, text)
		}
	}
}

// TestFirstPingOneIntervalAfterRegister drives the shard's ping ticks by hand: a client is
// first pinged pingSlots ticks (one interval) after the last tick before it registered, as
// ws-single pings one interval after the connect, and then once every interval.
func TestFirstPingOneIntervalAfterRegister(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1 // PingInterval 0: no ticker, only the ticks below
	h, _ := startHub(t, cfg)
	type client struct {
		c     *Client
		f     *fakeConn
		first int // tick of the expected first ping
		ticks []int
	}
	// registered before any tick, after tick 0, after tick 6 and after tick 15
	registerAfter := map[int]int{-1: 0, 0: 1, 6: 2, 15: 3}
	clients := make([]*client, len(registerAfter))
	register := func(tick int) {
		if i, ok := registerAfter[tick]; ok {
			f := &fakeConn{}
			clients[i] = &client{c: h.Register(f), f: f, first: tick + pingSlots}
		}
	}
	register(-1)
	s := clients[0].c.shard // the only one
	for tick := range 3 * pingSlots {
		inShard(clients[0].c, func() { s.ping(context.Background()) })
		for _, cl := range clients {
			if cl == nil {
				continue
			}
			// A ping that started set pinging before the tick returned; wait until it is done.
			eventually(t, "ping done", func() bool {
				cl.c.mu.Lock()
				defer cl.c.mu.Unlock()
				return !cl.c.pinging
			})
			cl.f.mu.Lock()
			if cl.f.pings > len(cl.ticks) {
				cl.ticks = append(cl.ticks, tick)
			}
			cl.f.mu.Unlock()
		}
		register(tick)
	}
	for i, cl := range clients {
		var want []int
		for tick := cl.first; tick < 3*pingSlots; tick += pingSlots {
			want = append(want, tick)
		}
		if !slices.Equal(cl.ticks, want) {
			t.Errorf("client %d: pinged at ticks %v, want %v", i, cl.ticks, want)
		}
		cl.c.Finish(ReasonClient)
	}
}

// TestPickLeastLoaded checks the sharding function after churn: connections leaving one shard
// make it the target of the next connections.
func TestPickLeastLoaded(t *testing.T) {
	h, _ := startHub(t, testConfig())
	byShard := map[int][]*Client{}
	for range 6 {
		c := h.Register(&fakeConn{})
		byShard[c.Shard()] = append(byShard[c.Shard()], c)
	}
	for _, c := range byShard[1] {
		c.Finish(ReasonClient)
	}
	eventually(t, "shard 1 emptied", func() bool { return h.shards[1].load.Load() == 0 })
	var again []*Client
	for range 2 {
		c := h.Register(&fakeConn{})
		if c.Shard() != 1 {
			t.Errorf("new connection went to shard %d, want the emptied shard 1", c.Shard())
		}
		again = append(again, c)
	}
	for _, c := range append(append(byShard[0], byShard[2]...), again...) {
		c.Finish(ReasonClient)
	}
}
