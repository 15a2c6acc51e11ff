package hub

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// TestQueuedBehindFullSocketIsOneWrite: the messages queued behind a full socket go in one
// Write once its flush is out, in order, each counted once, and nothing counts before the
// socket took it.
func TestQueuedBehindFullSocketIsOneWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, m := startHub(t, testConfig())
		f := newFake()
		f.stall = make(chan struct{})
		c := register(t, h, f)
		handle(t, h, c, sub(protocol.OpSubscribe, "1", "t:k"))
		synctest.Wait()
		if !flushing(c) {
			t.Fatal("the reply's write is not in flight behind the full socket")
		}
		const n = 5
		for i := range n {
			publish(t, h, record("t", "k", int64(i)))
		}
		synctest.Wait()
		if q := queued(c); q != n+1 {
			t.Fatalf("queued = %d, want %d", q, n+1)
		}
		if got := testutil.ToFloat64(m.MessagesDelivered); got != 0 {
			t.Errorf("delivered = %v before the socket took anything, want 0", got)
		}
		close(f.stall)
		synctest.Wait()
		writes := f.socketWrites()
		if len(writes) != 2 || len(writes[1]) != n {
			t.Fatalf("socket writes %q, want the reply then the %d records in one write", writes, n)
		}
		for i, l := range writes[1] {
			if !strings.Contains(l, fmt.Sprintf(`"offset":%d,`, i)) {
				t.Fatalf("record %d out of order: %s", i, l)
			}
		}
		if got := testutil.ToFloat64(m.MessagesDelivered); got != n+1 {
			t.Errorf("delivered = %v, want %d", got, n+1)
		}
		if got := testutil.ToFloat64(m.FramesWritten); got != n+1 {
			t.Errorf("frames = %v, want %d", got, n+1)
		}
		finish(t, h, c, f)
	})
}

// TestWriteTakesAPrefix: a Write may take only a prefix of the queue; while the socket takes
// each at once the next follows in the same round, and when it does not, the rest stays
// queued (shared, not copied) until the flusher reports, in order.
func TestWriteTakesAPrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, m := startHub(t, testConfig())
		f := newFake()
		f.chunk, f.grant = 3, make(chan struct{})
		c := register(t, h, f)
		handle(t, h, c, sub(protocol.OpSubscribe, "1", "t:k"))
		synctest.Wait()
		const n = 10
		for i := range n {
			publish(t, h, record("t", "k", int64(i)))
		}
		synctest.Wait()
		f.grant <- struct{}{} // the reply goes; the burst's first chunk is handed over
		synctest.Wait()
		if inFlight(c) != 3 || pending(c) != n-3 {
			t.Errorf("in flight %d, pending %d; want 3 and %d", inFlight(c), pending(c), n-3)
		}
		for len(f.got()) < n+1 {
			f.grant <- struct{}{}
			synctest.Wait()
		}
		for i, w := range f.socketWrites()[1:] {
			if len(w) > 3 {
				t.Errorf("socket write %d carries %d lines, want at most 3", i, len(w))
			}
		}
		for i, l := range f.got()[1:] {
			if !strings.Contains(l, fmt.Sprintf(`"offset":%d,`, i)) {
				t.Fatalf("line %d out of order: %s", i, l)
			}
		}
		if got := testutil.ToFloat64(m.MessagesDelivered); got != n+1 {
			t.Errorf("delivered = %v, want %d", got, n+1)
		}
		finish(t, h, c, f)
	})
}

// TestPrefixWritesInOneRound: a socket that takes every prefix at once gets the whole queue
// in one round, Write after Write.
func TestPrefixWritesInOneRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := startHub(t, testConfig())
		f := newFake()
		f.chunk, f.stall = 3, make(chan struct{})
		c := register(t, h, f)
		handle(t, h, c, sub(protocol.OpSubscribe, "1", "t:k"))
		synctest.Wait()
		for i := range 10 {
			publish(t, h, record("t", "k", int64(i)))
		}
		synctest.Wait()
		close(f.stall)
		synctest.Wait()
		var sizes []int
		for _, w := range f.socketWrites() {
			sizes = append(sizes, len(w))
		}
		if fmt.Sprint(sizes) != "[1 3 3 3 1]" {
			t.Errorf("socket writes of %v lines, want [1 3 3 3 1]", sizes)
		}
		finish(t, h, c, f)
	})
}

// TestTakeReslices: a partial take (a chunk of a long queue) reslices past the messages
// taken instead of moving the rest of the queue to the front, so draining a queue of Q
// messages a chunk at a time costs O(Q), not O(Q^2/chunk), on the shard goroutine; the
// references taken are cleared, and a queue emptied after a partial take lets its backing
// array go. A queue emptied at once keeps its slice when it is small.
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
	c.take(taken(chunk))
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
	c.take(taken(len(c.pending)))
	if c.pending != nil || c.pendingBytes != 0 || c.resliced {
		t.Errorf("emptied after partial takes: pending cap %d, %d bytes, resliced %v; want the backing array dropped",
			cap(c.pending), c.pendingBytes, c.resliced)
	}
	for i, m := range old {
		if m != nil {
			t.Fatalf("message %d still referenced after the queue emptied", i)
		}
	}

	// A small queue taken whole keeps its slice for the next burst; a batched frame's
	// joining newlines are not queue bytes.
	small := make([]*protocol.Message, 0, maxSpareCap)
	c.pending = append(small, msg, msg)
	c.pendingBytes = 2 * size
	c.take(Written{Lines: 2, Frames: 1, Bytes: 2*size + 1})
	if len(c.pending) != 0 || cap(c.pending) != maxSpareCap || small[:1][0] != nil || c.pendingBytes != 0 {
		t.Errorf("small queue taken whole: len %d cap %d bytes %d, want its slice kept, cleared", len(c.pending), cap(c.pending), c.pendingBytes)
	}
}

// TestFullSocketDoesNotHoldTheShard: a client whose socket is full waits on its own flusher;
// a client of the same shard keeps receiving every record meanwhile, and the connection's
// close ends the waiting flusher.
func TestFullSocketDoesNotHoldTheShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Shards = 1
		cfg.WriteTimeout = time.Minute
		h, m := startHub(t, cfg)
		full, ok := newFake(), newFake()
		full.stall = make(chan struct{})
		cs, co := register(t, h, full), register(t, h, ok)
		handle(t, h, cs, sub(protocol.OpSubscribe, "1", "t:*"))
		handle(t, h, co, sub(protocol.OpSubscribe, "1", "t:*"))
		synctest.Wait()
		if got := testutil.ToFloat64(m.Subscriptions); got != 2 {
			t.Fatalf("ws_subscriptions = %v, want 2", got)
		}
		const n = 20
		for i := range n {
			publish(t, h, record("t", "k", int64(i)))
		}
		synctest.Wait()
		if got := len(ok.got()); got != n+1 {
			t.Errorf("the client of the same shard got %d lines, want %d", got, n+1)
		}
		if q := queued(cs); q != n+1 {
			t.Errorf("stalled client's queue = %d, want %d (the reply being flushed and the records)", q, n+1)
		}
		finish(t, h, cs, full) // returns: the close ends the waiting flusher
		if lines := full.got(); len(lines) != 0 {
			t.Errorf("the full socket got %d lines", len(lines))
		}
		finish(t, h, co, ok)
	})
}
