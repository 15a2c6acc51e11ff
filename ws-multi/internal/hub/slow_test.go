package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// TestSlowRule: a client past a queue limit is cut as slow only when it is not draining.
// Each case publishes records to one client and a healthy bystander of the same topic. The
// hub runs in a synctest bubble: its clock is the bubble's, so the timings are exact.
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
			// limit is drained, never cut.
			name: "draining burst is not cut", conn: func() *fakeConn { f := newFake(); f.lag = 5 * time.Millisecond; return f },
			writeTimeout: 5 * time.Second, records: 200,
		},
		{
			// The socket takes nothing: under continued traffic the write in flight waits
			// past slowAfter, and the next record cuts the client.
			name: "stuck client is cut", conn: func() *fakeConn { f := newFake(); f.stall = make(chan struct{}); return f },
			writeTimeout: 5 * time.Second, every: 20 * time.Millisecond, wantCut: true, minAge: slowAfter,
		},
		{
			// Every write completes (50 ms each, under slowAfter), but the traffic outpaces
			// it: the queue stays past the limit for longer than WS_WRITE_TIMEOUT.
			name: "client that does not catch up is cut", conn: func() *fakeConn { f := newFake(); f.lag = 50 * time.Millisecond; return f },
			writeTimeout: 300 * time.Millisecond, every: 10 * time.Millisecond, burst: 20, wantCut: true, minAge: 300 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.SendQueueMessages = 8
				cfg.WriteTimeout = tt.writeTimeout
				h, m := startHub(t, cfg)
				f, healthy := tt.conn(), newFake()
				c, ch := register(t, h, f), register(t, h, healthy)
				start := time.Now() // before the subscribe reply, the client's first write
				handle(t, h, c, sub(protocol.OpSubscribe, "1", "t:*"))
				handle(t, h, ch, sub(protocol.OpSubscribe, "1", "t:*"))
				synctest.Wait()

				sent := 0
				pub := func() {
					publish(t, h, record("t", "k", int64(sent)))
					sent++
				}
				if tt.every == 0 {
					for range tt.records {
						pub()
					}
				} else {
					for !f.isOverflowed() {
						if time.Since(start) > 10*time.Second {
							t.Fatal("not cut after 10 s of traffic")
						}
						for range max(tt.burst, 1) {
							pub()
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
					if f.isOverflowed() || testutil.ToFloat64(m.SendQueueOverflow) != 0 {
						t.Fatal("a draining client was cut")
					}
				} else {
					if age < tt.minAge {
						t.Errorf("cut %v after the first record, want no earlier than %v", age, tt.minAge)
					}
					if got := testutil.ToFloat64(m.SendQueueOverflow); got != 1 {
						t.Errorf("ws_send_queue_overflow_total = %v, want 1", got)
					}
					synctest.Wait()
					if q := queued(c); q != 0 {
						t.Errorf("a client cut as slow still has %d queued", q)
					}
				}
				finish(t, h, c, f)
				finish(t, h, ch, healthy)
			})
		})
	}
}

// TestSync: Sync returns at once for an idle client, waits while a reply is queued behind a
// full socket and returns once the socket took it, gives up with ctx, and returns when the
// client goes.
func TestSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := startHub(t, testConfig())
		idle := newFake()
		ic := register(t, h, idle)
		if err := h.Sync(t.Context(), ic); err != nil {
			t.Errorf("Sync of an idle client = %v", err)
		}
		finish(t, h, ic, idle)

		f := newFake()
		f.stall = make(chan struct{})
		c := register(t, h, f)
		handle(t, h, c, protocol.Request{Op: protocol.OpPing, ID: "owed", HasID: true})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		err := h.Sync(ctx, c)
		cancel()
		if err == nil {
			t.Fatal("Sync returned while the reply waited for a full socket")
		}
		done := make(chan error, 1)
		go func() { done <- h.Sync(t.Context(), c) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Sync = %v before the socket took the reply", err)
		default:
		}
		close(f.stall)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if lines := f.got(); len(lines) != 1 || lines[0] != `{"op":"pong","id":"owed"}` {
			t.Errorf("after Sync the socket holds %q, want the pong", lines)
		}

		// A client that goes while its reply waits: Sync returns.
		g := newFake()
		g.stall = make(chan struct{})
		gc := register(t, h, g)
		handle(t, h, gc, protocol.Request{Op: protocol.OpPing})
		go func() { done <- h.Sync(t.Context(), gc) }()
		synctest.Wait()
		if syncing(gc) == 0 {
			t.Fatal("Sync of a client whose reply waits does not wait")
		}
		finish(t, h, gc, g)
		if err := <-done; err != nil {
			t.Errorf("Sync of a client that went = %v", err)
		}
		finish(t, h, c, f)
	})
}

// TestFailedFlushDropsClient: a socket that takes nothing of a write within its timeout
// (Flush fails) ends the deliveries to its client, and nothing of the write counts as
// delivered.
func TestFailedFlushDropsClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, m := startHub(t, testConfig())
		f := newFake()
		f.stall, f.timeout = make(chan struct{}), 20*time.Millisecond
		c := register(t, h, f)
		handle(t, h, c, sub(protocol.OpSubscribe, "1", "t:*"))
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		publish(t, h, record("t", "k", 0))
		synctest.Wait()
		if q := queued(c); q != 0 {
			t.Errorf("a client whose flush failed has %d queued", q)
		}
		if got := testutil.ToFloat64(m.MessagesDelivered); got != 0 {
			t.Errorf("delivered = %v after a failed flush, want 0", got)
		}
		finish(t, h, c, f)
	})
}
