package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// TestChunkedWrites: a Write that takes only part of the queue leaves the rest
// queued; when the socket took the part at once the next chunk follows in the
// same round, and when it did not the next chunk waits for the flusher.
func TestChunkedWrites(t *testing.T) {
	t.Run("socket takes everything", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := start(t, roomy)
			conn := newFakeConn()
			conn.gate = make(chan struct{})
			c := f.client(t, conn)
			f.do(t, c, protocol.OpSubscribe, "", "t") // held in flight
			for i := range 10 {
				f.publish(t, "t", "t", i)
			}
			waitPending(t, c, 10)
			conn.mu.Lock()
			conn.open, conn.chunk, conn.batches = true, 3, 0
			conn.mu.Unlock()
			conn.gate <- struct{}{} // the reply is out: the ten go in chunks of 3, 3, 3, 1
			got := conn.waitLines(t, 11)
			for i := range 10 {
				if got[1+i] != fmt.Sprintf("t#%d", i) {
					t.Fatalf("lines = %q: out of order", got)
				}
			}
			if n := conn.writes(); n != 4 {
				t.Errorf("writes = %d, want 4 chunks of at most 3", n)
			}
			close(conn.gate)
		})
	})
	t.Run("socket full", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := start(t, roomy)
			conn := newFakeConn()
			conn.gate = make(chan struct{})
			conn.chunk = 4
			c := f.client(t, conn)
			f.do(t, c, protocol.OpSubscribe, "", "t") // in flight: 1 message
			for i := range 10 {
				f.publish(t, "t", "t", i)
			}
			waitPending(t, c, 10)
			conn.gate <- struct{}{} // the reply is out; 4 records go in flight, 6 stay
			conn.waitLines(t, 1)
			waitPending(t, c, 6)
			if n := conn.writes(); n != 2 {
				t.Fatalf("writes = %d, want 2 (the reply, then one chunk)", n)
			}
			close(conn.gate)
			got := conn.waitLines(t, 11)
			if got[10] != "t#9" {
				t.Fatalf("lines = %q", got)
			}
		})
	})
}

// TestDrainingClientIsNotCut: past its limits, a client whose writes complete
// is kept as long as each write in flight waits less than slowAfter and its
// queue comes back within the limits before the write timeout; either one
// broken cuts it.
func TestDrainingClientIsNotCut(t *testing.T) {
	cfg := Config{MaxSubscriptions: 10, SendQueueMessages: 5, SendQueueBytes: 1 << 20, WriteTimeout: 5 * time.Second}
	tests := []struct {
		name    string
		step    time.Duration // clock advance per completed write
		steps   int
		wantCut bool
	}{
		{name: "writes complete within slowAfter", step: slowAfter - time.Millisecond, steps: 4},
		{name: "a write waits past slowAfter", step: slowAfter + time.Millisecond, steps: 1, wantCut: true},
		{name: "past a limit for longer than the write timeout", step: slowAfter / 2, steps: 12, wantCut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := start(t, cfg)
				conn := newFakeConn()
				conn.gate = make(chan struct{})
				conn.chunk = 2
				c := f.client(t, conn)
				var once sync.Once
				release := func() { once.Do(func() { close(conn.gate) }) }
				t.Cleanup(release) // before the client's: its flusher must end
				f.do(t, c, protocol.OpSubscribe, "", "t")
				n := 0
				publish := func(k int) {
					for range k {
						f.publish(t, "t", "t", n)
						n++
					}
					synctest.Wait() // the judgement is done
				}
				publish(10) // past the limit of 5; the reply is in flight
				for range tt.steps {
					time.Sleep(tt.step)
					publish(3) // new traffic, faster than the 2 per write: the client is judged
					if testutil.ToFloat64(f.m.SendQueueOverflow) != 0 {
						break // cut: no write follows the one in flight
					}
					if tt.step < slowAfter {
						prev := writesInFlight(c, conn)
						conn.gate <- struct{}{} // the write completes; the next chunk goes
						waitFlushes(t, c, conn, prev)
					}
				}
				cut := testutil.ToFloat64(f.m.SendQueueOverflow) == 1
				if cut != tt.wantCut {
					t.Fatalf("cut = %v, want %v", cut, tt.wantCut)
				}
			})
		})
	}
}

// TestStuckSocketIsCutAtOnce: the wait of a write in flight counts from when
// its flusher started, not from when the client is first judged: a client
// whose socket has taken nothing for more than slowAfter is cut as slow the
// first time its queue goes past a limit.
func TestStuckSocketIsCutAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{MaxSubscriptions: 10, SendQueueMessages: 5, SendQueueBytes: 1 << 20, WriteTimeout: 5 * time.Second}
		f := start(t, cfg)
		conn := newFakeConn()
		conn.gate = make(chan struct{})
		c := f.client(t, conn)
		t.Cleanup(func() { close(conn.gate) })    // before the client's: its flusher must end
		f.do(t, c, protocol.OpSubscribe, "", "t") // the reply waits in flight from now
		for i := range 4 {
			f.publish(t, "t", "t", i) // within the limit: 1 in flight + 4 pending
		}
		synctest.Wait()
		if testutil.ToFloat64(f.m.SendQueueOverflow) != 0 {
			t.Fatal("cut within its limits")
		}
		time.Sleep(slowAfter + time.Millisecond)
		f.publish(t, "t", "t", 4) // past the limit: the write has waited > slowAfter
		synctest.Wait()
		if got := testutil.ToFloat64(f.m.SendQueueOverflow); got != 1 {
			t.Fatalf("send_queue_overflow = %v, want 1: a client stuck for more than slowAfter is cut at once", got)
		}
		select {
		case <-conn.overflow:
		case <-time.After(5 * time.Second):
			t.Fatal("Overflow not called")
		}
	})
}

// TestSyncWaitsForTheQueue: Sync returns once everything queued before it has
// been handed to the connection, and at once for an idle or gone client.
func TestSyncWaitsForTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, roomy)
		idle := f.client(t, newFakeConn())
		if err := f.h.Sync(f.ctx, idle); err != nil {
			t.Fatalf("Sync(idle) = %v", err)
		}

		conn := newFakeConn()
		conn.gate = make(chan struct{})
		c := f.client(t, conn)
		f.do(t, c, protocol.OpPing, "1") // in flight, held
		synctest.Wait()                  // written before the next request comes: not in one round
		f.do(t, c, protocol.OpPing, "2") // pending behind it
		synced := make(chan error, 1)
		go func() { synced <- f.h.Sync(f.ctx, c) }()

		short, cancel := context.WithTimeout(f.ctx, 50*time.Millisecond)
		defer cancel()
		if err := f.h.Sync(short, c); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sync with a held write = %v, want the context's deadline", err)
		}
		conn.gate <- struct{}{} // pong 1 out; pong 2 goes in flight
		select {
		case err := <-synced:
			t.Fatalf("Sync returned %v with a write in flight", err)
		case <-time.After(50 * time.Millisecond):
		}
		conn.gate <- struct{}{}
		select {
		case err := <-synced:
			if err != nil {
				t.Fatalf("Sync = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Sync did not return once the queue was out")
		}
		if got := conn.snapshot(); len(got) != 2 {
			t.Fatalf("lines at Sync = %q, want both pongs", got)
		}

		// A client dropped while a Sync waits releases it.
		conn.gate = nil
		gone := newFakeConn()
		gone.gate = make(chan struct{})
		g := f.client(t, gone)
		f.do(t, g, protocol.OpPing, "")
		go func() { synced <- f.h.Sync(f.ctx, g) }()
		waitSyncing(t, g) // the Sync waits in the loop before g is dropped
		if err := f.h.Unregister(f.ctx, g); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-synced:
			if err != nil {
				t.Fatalf("Sync of a dropped client = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Sync not released when its client was dropped")
		}
		close(gone.gate)
	})
}

// waitSyncing waits until the loop holds a Sync caller waiting for c.
func waitSyncing(t *testing.T, c *Client) {
	t.Helper()
	synctest.Wait()
	if syncing(c) == 0 {
		t.Fatal("Sync not registered in the loop")
	}
}

// writesInFlight waits until the hub is idle and returns how many Writes conn
// has had, or -1 when c has no write in flight.
func writesInFlight(c *Client, conn *fakeConn) int {
	synctest.Wait()
	if !flushing(c) {
		return -1
	}
	return conn.writes()
}

// waitFlushes checks that the loop has taken c's flusher report and handed
// the next chunk to a new flusher: a Write after the prev-th is in flight.
func waitFlushes(t *testing.T, c *Client, conn *fakeConn, prev int) {
	t.Helper()
	if writesInFlight(c, conn) <= prev {
		t.Fatal("no new write in flight after the last one completed")
	}
}
