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
