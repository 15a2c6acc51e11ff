package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// TestCorkedHandOffIsOneSocketWrite: with batching off, the messages queued behind a full
// socket are several frames but one socket write, in order, each counted once.
func TestCorkedHandOffIsOneSocketWrite(t *testing.T) {
	cfg := testConfig()
	cfg.Batch = false
	h, m := startHub(t, cfg)
	f := &fakeConn{stall: make(chan struct{})}
	c := h.Register(f)
	c.Request(sub(protocol.OpSubscribe, "1", "t:k"))
	// The socket takes nothing of the reply, so the records pile up behind its flush.
	eventually(t, "flusher started", func() bool {
		var flushing bool
		inShard(c, func() { flushing = c.flushing })
		return flushing
	})
	const n = 5
	for i := range n {
		if err := h.Publish(context.Background(), record("t", "k", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "records queued", func() bool {
		var pending int
		inShard(c, func() { pending = len(c.pending) })
		return pending == n
	})
	if got := testutil.ToFloat64(m.MessagesDelivered); got != 0 {
		t.Errorf("delivered = %v before the socket took anything, want 0", got)
	}
	close(f.stall)
	waitLines(t, f, n+1)
	eventually(t, "two socket writes", func() bool { return len(f.socketWrites()) == 2 })
	writes := f.socketWrites()
	if strings.Count(writes[1], "|") != n-1 {
		t.Fatalf("second socket write carries %q, want the %d records in one write", writes[1], n)
	}
	for i := range n {
		if !strings.Contains(strings.Split(writes[1], "|")[i], fmt.Sprintf(`"offset":%d`, i)) {
			t.Fatalf("record %d out of order in %q", i, writes[1])
		}
	}
	eventually(t, "all counted", func() bool { return testutil.ToFloat64(m.MessagesDelivered) == n+1 })
	if got := testutil.ToFloat64(m.FramesWritten); got != n+1 {
		t.Errorf("frames = %v, want %d", got, n+1)
	}
	c.Finish(ReasonClient)
}

// TestWriteHandsOneChunkAtATime: a burst queued for a socket that does not keep up is handed
// over about chunkBytes at a time (until the cork holds more than chunkBytes the socket did
// not take); the rest stays queued as shared messages, in order, and follows write by write.
func TestWriteHandsOneChunkAtATime(t *testing.T) {
	cfg := testConfig()
	cfg.Batch = false
	cfg.SendQueueBytes = 8 << 20
	h, m := startHub(t, cfg)
	f := &fakeConn{grant: make(chan struct{})}
	c := h.Register(f)
	c.Request(sub(protocol.OpSubscribe, "1", "t:k"))
	eventually(t, "subscribe reply waits for its socket", func() bool { return queued(c) == 1 })
	const n = 30
	value := `"` + strings.Repeat("v", 10<<10) + `"`
	for i := range n {
		rec := protocol.EncodeRecord(protocol.Record{Channel: "t:k", Topic: "t", Offset: int64(i), Value: []byte(value), Timestamp: time.Now()})
		if err := h.Publish(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "burst queued behind the reply", func() bool { return queued(c) == n+1 })

	perChunk := chunkBytes/(len(value)+80) + 1 // the first frames past chunkBytes
	f.grant <- struct{}{}                      // the reply goes; the burst's first chunk is handed over
	eventually(t, "first chunk in flight", func() bool {
		var inflight, pending int
		inShard(c, func() { inflight, pending = c.inflight, len(c.pending) })
		return inflight == perChunk && pending == n-perChunk
	})
	if held := f.Buffered(); held > chunkBytes+len(value)+100 {
		t.Errorf("the cork holds %d bytes of a %d-byte burst, want one chunk", held, n*len(value))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(f.lines()) < n+1 {
		select {
		case f.grant <- struct{}{}: // one more flush may go
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("stuck at %d lines", len(f.lines()))
			}
		}
	}
	writes := f.socketWrites()
	for i, w := range writes[1:] {
		if frames := strings.Count(w, "|") + 1; frames > perChunk {
			t.Errorf("socket write %d carries %d frames, want at most %d", i, frames, perChunk)
		}
	}
	for i, l := range f.lines()[1:] {
		if !strings.Contains(l, fmt.Sprintf(`"offset":%d,`, i)) {
			t.Fatalf("line %d out of order: %.60s", i, l)
		}
	}
	eventually(t, "all counted", func() bool { return testutil.ToFloat64(m.MessagesDelivered) == n+1 })
	c.Finish(ReasonClient)
}

// TestTakeReslices: a partial take (a chunk of a long queue) reslices past the messages
// handed over instead of moving the rest of the queue to the front, so draining a queue of Q
// messages a chunk at a time costs O(Q), not O(Q^2/chunk), on the shard goroutine; the
// references taken are cleared, and a queue emptied after a partial take lets its backing
// array go. A queue emptied at once keeps its slice when it is small, as before.
func TestTakeReslices(t *testing.T) {
	msg := &protocol.Message{Data: []byte("0123456789")}
	const q, chunk = 1000, 100
	c := &Client{}
	for range q {
		c.pending = append(c.pending, msg)
	}
	c.pendingBytes = q * len(msg.Data)
	old := c.pending
	c.take(written{lines: chunk, size: chunk * len(msg.Data)})
	if len(c.pending) != q-chunk || &c.pending[0] != &old[chunk] {
		t.Fatal("a partial take copied the rest of the queue instead of reslicing past the chunk")
	}
	if c.pendingBytes != (q-chunk)*len(msg.Data) {
		t.Errorf("pendingBytes = %d, want %d", c.pendingBytes, (q-chunk)*len(msg.Data))
	}
	for i, m := range old[:chunk] {
		if m != nil {
			t.Fatalf("taken message %d still referenced by the backing array", i)
		}
	}
	for len(c.pending) > chunk {
		c.take(written{lines: chunk, size: chunk * len(msg.Data)})
	}
	c.take(written{lines: len(c.pending), size: c.pendingBytes})
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
	c.pendingBytes = 2 * len(msg.Data)
	c.take(written{lines: 2, size: c.pendingBytes})
	if len(c.pending) != 0 || cap(c.pending) != maxSpareCap || small[:1][0] != nil {
		t.Errorf("small queue taken whole: len %d cap %d, want its slice kept, cleared", len(c.pending), cap(c.pending))
	}
}

// TestFullSocketDoesNotHoldTheShard: a client whose socket is full waits on its own flusher;
// a client of the same shard keeps receiving every record meanwhile, and Finish ends the
// waiting flusher (the connection closes under it).
func TestFullSocketDoesNotHoldTheShard(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	cfg.WriteTimeout = time.Minute // only Finish can end the stalled flush in time
	h, m := startHub(t, cfg)
	full, ok := &fakeConn{stall: make(chan struct{})}, &fakeConn{}
	cs, co := h.Register(full), h.Register(ok)
	cs.Request(sub(protocol.OpSubscribe, "1", "t:*"))
	co.Request(sub(protocol.OpSubscribe, "1", "t:*"))
	waitLines(t, ok, 1)
	eventually(t, "both subscribed", func() bool { return testutil.ToFloat64(m.Subscriptions) == 2 })
	const n = 20
	for i := range n {
		if err := h.Publish(context.Background(), record("t", "k", int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitLines(t, ok, n+1)
	if q := queued(cs); q != n+1 {
		t.Errorf("stalled client's queue = %d, want %d (the reply being flushed and the records)", q, n+1)
	}
	done := make(chan Reason, 1)
	go func() { done <- cs.Finish(ReasonClient) }()
	select {
	case r := <-done:
		if r != ReasonClient {
			t.Errorf("reason = %v, want client", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Finish did not end a client whose flush waits on a full socket")
	}
	if lines := full.lines(); len(lines) != 0 {
		t.Errorf("the full socket got %d lines", len(lines))
	}
	co.Finish(ReasonClient)
}

// TestFlushTimeoutEndsClient: a socket that takes nothing of a hand-off within the write
// timeout ends the client as write_timeout, and nothing of it counts as delivered.
func TestFlushTimeoutEndsClient(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 20 * time.Millisecond
	h, m := startHub(t, cfg)
	f := &fakeConn{stall: make(chan struct{})}
	c := h.Register(f)
	c.Request(protocol.Request{Op: protocol.OpPing})
	eventually(t, "write timeout close", func() bool { _, _, _, closed := f.snapshot(); return closed })
	if r := c.Finish(ReasonClient); r != ReasonWriteTimeout {
		t.Errorf("reason = %v, want write_timeout", r)
	}
	if got := testutil.ToFloat64(m.MessagesDelivered); got != 0 {
		t.Errorf("delivered = %v after a failed flush, want 0", got)
	}
}
