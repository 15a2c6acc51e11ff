package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// TestSlowRule: a client past a queue limit is cut as slow only when it is not draining.
// Each case publishes records to one client and a healthy bystander of the same topic.
func TestSlowRule(t *testing.T) {
	tests := []struct {
		name         string
		conn         func() *fakeConn
		writeTimeout time.Duration
		records      int           // published at once, or burst per every when every > 0
		every        time.Duration // continued traffic until the client is cut
		burst        int           // records per every (1 when zero)
		wantCut      bool
		minAge       time.Duration // the cut comes no earlier than this after the client's first write
	}{
		{
			// Each write waits 5 ms for its socket, then goes: a burst 25 times the queue
			// limit is drained, never cut (the old rule cut it at the 9th record).
			name: "draining burst is not cut", conn: func() *fakeConn { return &fakeConn{lag: 5 * time.Millisecond} },
			writeTimeout: 5 * time.Second, records: 200,
		},
		{
			// The socket takes nothing: under continued traffic the write in flight waits
			// past slowAfter, and the next record cuts the client (before WS_WRITE_TIMEOUT
			// would end its flush).
			name: "stuck client is cut", conn: func() *fakeConn { return &fakeConn{stall: make(chan struct{})} },
			writeTimeout: 5 * time.Second, every: 20 * time.Millisecond, wantCut: true, minAge: slowAfter,
		},
		{
			// Every write completes (50 ms each, under slowAfter), but the traffic outpaces
			// it: the queue stays past the limit for longer than WS_WRITE_TIMEOUT. Bursts of
			// 20 every 10 ms keep the queue past 8 messages at every flush even when a loaded
			// machine stretches the sleeps several times over (one record per sleep did not).
			name: "client that does not catch up is cut", conn: func() *fakeConn { return &fakeConn{lag: 50 * time.Millisecond} },
			writeTimeout: 300 * time.Millisecond, every: 10 * time.Millisecond, burst: 20, wantCut: true, minAge: 300 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SendQueueMessages = 8
			cfg.WriteTimeout = tt.writeTimeout
			h, m := startHub(t, cfg)
			f, healthy := tt.conn(), &fakeConn{}
			c, ch := h.Register(f), h.Register(healthy)
			start := time.Now() // before the subscribe reply, the stuck client's first write
			c.Request(sub(protocol.OpSubscribe, "1", "t:*"))
			ch.Request(sub(protocol.OpSubscribe, "1", "t:*"))
			eventually(t, "both subscribed", func() bool { return testutil.ToFloat64(m.Subscriptions) == 2 })

			sent := 0
			publish := func() {
				if err := h.Publish(context.Background(), record("t", "k", int64(sent))); err != nil {
					t.Fatal(err)
				}
				sent++
			}
			closed := func() bool { _, _, _, closed := f.snapshot(); return closed }
			if tt.every == 0 {
				for range tt.records {
					publish()
				}
			} else {
				for !closed() {
					if time.Since(start) > 10*time.Second {
						t.Fatal("not cut after 10 s of traffic")
					}
					for range max(tt.burst, 1) {
						publish()
					}
					time.Sleep(tt.every)
				}
			}
			age := time.Since(start)
			waitLines(t, healthy, sent+1)

			if !tt.wantCut {
				lines := waitLines(t, f, sent+1)
				for i, l := range lines[1:] {
					if !strings.Contains(l, fmt.Sprintf(`"offset":%d,`, i)) {
						t.Fatalf("line %d = %s: lost or out of order", i, l)
					}
				}
				if closed() || testutil.ToFloat64(m.SendQueueOverflow) != 0 {
					t.Fatal("a draining client was cut")
				}
				if r := c.Finish(ReasonClient); r != ReasonClient {
					t.Errorf("reason = %v, want client", r)
				}
				ch.Finish(ReasonClient)
				return
			}
			_, code, text, _ := f.snapshot()
			if code != websocket.StatusPolicyViolation || text != "slow" {
				t.Errorf("closed with %d %q, want 1008 slow", code, text)
			}
			if age < tt.minAge {
				t.Errorf("cut %v after the first record, want no earlier than %v", age, tt.minAge)
			}
			if f.stall != nil {
				close(f.stall)
			}
			if r := c.Finish(ReasonClient); r != ReasonSlow {
				t.Errorf("reason = %v, want slow", r)
			}
			if got := testutil.ToFloat64(m.SendQueueOverflow); got != 1 {
				t.Errorf("ws_send_queue_overflow_total = %v, want 1", got)
			}
			ch.Finish(ReasonClient)
		})
	}
}

// TestSync: Sync returns at once for an idle client, waits while a reply is queued behind a
// full socket and returns once the socket took it, gives up with ctx, and returns when the
// client goes.
func TestSync(t *testing.T) {
	h, _ := startHub(t, testConfig())
	idle := h.Register(&fakeConn{})
	if err := idle.Sync(t.Context()); err != nil {
		t.Errorf("Sync of an idle client = %v", err)
	}
	idle.Finish(ReasonClient)

	f := &fakeConn{stall: make(chan struct{})}
	c := h.Register(f)
	c.Request(protocol.Request{Op: protocol.OpPing, ID: "owed", HasID: true})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	err := c.Sync(ctx)
	cancel()
	if err == nil {
		t.Fatal("Sync returned while the reply waited for a full socket")
	}
	done := make(chan error, 1)
	go func() { done <- c.Sync(t.Context()) }()
	select {
	case err := <-done:
		t.Fatalf("Sync = %v before the socket took the reply", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(f.stall)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lines := f.lines(); len(lines) != 1 || lines[0] != `{"op":"pong","id":"owed"}` {
		t.Errorf("after Sync the socket holds %q, want the pong", lines)
	}

	// A client that goes while its reply waits: Sync returns. The client goes only once
	// the Sync waits in the shard, else Unregister could run first and the case would
	// test a Sync of a client already gone.
	g := &fakeConn{stall: make(chan struct{})}
	gc := h.Register(g)
	gc.Request(protocol.Request{Op: protocol.OpPing})
	go func() { done <- gc.Sync(t.Context()) }()
	eventually(t, "Sync registered in the shard", func() bool {
		var waiting bool
		inShard(gc, func() { waiting = gc.synced != nil })
		return waiting
	})
	gc.Kill(ReasonShutdown)
	if r := gc.Finish(ReasonClient); r != ReasonShutdown {
		t.Errorf("reason = %v", r)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Sync of a client that went = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sync still waits 5 s after its client went")
	}
	c.Finish(ReasonClient)
}

// TestDecidedReasonWins: a reason decided before the close (the server's rate_limit, while
// it waits for the owed replies) is the client's reason though a flush then times out: the
// flusher's write_timeout still drops the socket, without changing the reason.
func TestDecidedReasonWins(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 100 * time.Millisecond
	h, _ := startHub(t, cfg)
	f := &fakeConn{stall: make(chan struct{})}
	c := h.Register(f)
	c.Request(protocol.Request{Op: protocol.OpPing}) // its flush times out after 100 ms
	eventually(t, "reply in flight", func() bool {
		var flushing bool
		inShard(c, func() { flushing = c.flushing })
		return flushing
	})
	if !c.Decide(ReasonRateLimit) {
		t.Fatal("Decide on a live client did not record its reason")
	}
	if c.Decide(ReasonSlow) {
		t.Error("a second Decide replaced the first reason")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("Sync = %v, want nil once the timed-out flush dropped the client", err)
	}
	eventually(t, "socket closed", func() bool { _, _, _, closed := f.snapshot(); return closed })
	if _, code, _, _ := f.snapshot(); code != -1 {
		t.Errorf("socket closed with code %d, want dropped (CloseNow) by the write timeout", code)
	}
	c.Kill(ReasonRateLimit) // the server's close after Sync: nothing left to do
	if r := c.Finish(ReasonClient); r != ReasonRateLimit {
		t.Errorf("reason = %v, want rate_limit", r)
	}
}
