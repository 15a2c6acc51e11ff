package hub

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// TestFullSocketDoesNotHoldTheLoop: a client whose socket is full waits on its
// own flusher; another client keeps receiving every record meanwhile, and once
// the socket drains the held-back messages follow in one write, in order.
func TestFullSocketDoesNotHoldTheLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, roomy)
		full, ok, cf := f.heldAndOpen(t)
		const n = 20
		for i := range n {
			f.publish(t, "t", "t", i)
		}
		ok.waitLines(t, n+1)
		waitPending(t, cf, n) // behind the reply being flushed
		if inFlight(cf) != 1 || queued(cf) != n+1 {
			t.Fatalf("in flight %d, queued %d; want 1 (the reply) and %d", inFlight(cf), queued(cf), n+1)
		}
		if got := full.snapshot(); len(got) != 0 {
			t.Fatalf("the full socket got %q", got)
		}
		close(full.gate)
		got := full.waitLines(t, n+1)
		for i := range n {
			if got[1+i] != fmt.Sprintf("t#%d", i) {
				t.Fatalf("lines = %q: out of order", got)
			}
		}
		if n := full.writes(); n != 2 {
			t.Errorf("writes = %d, want 2 (the reply, then every record at once)", n)
		}
	})
}

// TestFailedFlushDropsClient: a flush that fails (a stalled or reset socket)
// ends every delivery to the client: its subscriptions go, nothing more is
// written.
func TestFailedFlushDropsClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, roomy)
		conn := newFakeConn()
		conn.gate = make(chan struct{})
		conn.flushErr = errors.New("fake: write timed out")
		c := f.client(t, conn)
		f.do(t, c, protocol.OpSubscribe, "", "t")
		waitPending(t, c, 0)
		if got := testutil.ToFloat64(f.m.Subscriptions); got != 1 {
			t.Fatalf("ws_subscriptions = %v, want 1", got)
		}
		close(conn.gate)
		deadline := 0
		for testutil.ToFloat64(f.m.Subscriptions) != 0 {
			if deadline++; deadline > 5000 {
				t.Fatal("client still subscribed after its flush failed")
			}
			waitPending(t, c, 0)
		}
		f.publish(t, "t", "t", 1)
		waitPending(t, c, 0)
		if got := conn.snapshot(); len(got) != 0 {
			t.Fatalf("lines after a failed flush: %q", got)
		}
	})
}

// TestTakeReslices: a partial take (a chunk of a long queue) reslices past the
// messages taken instead of moving the rest of the queue to the front, so
// draining a queue of Q messages a chunk at a time costs O(Q), not
// O(Q^2/chunk), on the loop goroutine; the references taken are cleared, and a
// queue emptied after a partial take lets its backing array go. A queue
// emptied at once keeps its slice when it is small.
func TestTakeReslices(t *testing.T) {
	t.Parallel()
	msg := &protocol.Message{Wire: []byte("0123456789")}
	const q, chunk = 1000, 100
	size := len(msg.Wire)
	taken := func(n int) Written { return Written{Lines: n, Frames: n, Bytes: n * size} }
	c := &Client{}
	for range q {
		c.pending = append(c.pending, msg)
	}
	c.pendingBytes = q * size
	old := c.pending
	if b := c.take(taken(chunk)); b != chunk*size {
		t.Errorf("partial take returned %d bytes, want %d", b, chunk*size)
	}
	if len(c.pending) != q-chunk || &c.pending[0] != &old[chunk] {
		t.Fatal("a partial take copied the rest of the queue instead of reslicing past the chunk")
	}
	if c.pendingBytes != (q-chunk)*size {
		t.Errorf("pendingBytes = %d, want %d", c.pendingBytes, (q-chunk)*size)
	}
	for i, m := range old[:chunk] {
		if m != nil {
			t.Fatalf("taken message %d still referenced by the backing array", i)
		}
	}
	for len(c.pending) > chunk {
		c.take(taken(chunk))
	}
	if b := c.take(taken(len(c.pending))); b != chunk*size {
		t.Errorf("last take returned %d bytes, want %d", b, chunk*size)
	}
	if c.pending != nil || c.pendingBytes != 0 || c.resliced {
		t.Errorf("emptied after partial takes: pending cap %d, %d bytes, resliced %v; want the backing array dropped",
			cap(c.pending), c.pendingBytes, c.resliced)
	}
	for i, m := range old {
		if m != nil {
			t.Fatalf("message %d still referenced after the queue emptied", i)
		}
	}

	// A small queue taken whole keeps its slice for the next burst.
	small := make([]*protocol.Message, 0, maxSpareCap)
	c.pending = append(small, msg, msg)
	c.pendingBytes = 2 * size
	c.take(Written{Lines: 2, Frames: 1, Bytes: 2*size + 1})
	if len(c.pending) != 0 || cap(c.pending) != maxSpareCap || small[:1][0] != nil || c.pendingBytes != 0 {
		t.Errorf("small queue taken whole: len %d cap %d bytes %d, want its slice kept, cleared", len(c.pending), cap(c.pending), c.pendingBytes)
	}
}
