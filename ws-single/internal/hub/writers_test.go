package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// concurrency counts Write calls in progress across conns and their peak.
type concurrency struct{ cur, peak atomic.Int64 }

// countedConn is a fakeConn whose Writes count in a shared concurrency.
type countedConn struct {
	*fakeConn
	n *concurrency
}

func (c countedConn) Write(msgs []*Message) error {
	now := c.n.cur.Add(1)
	for {
		peak := c.n.peak.Load()
		if now <= peak || c.n.peak.CompareAndSwap(peak, now) {
			break
		}
	}
	defer c.n.cur.Add(-1)
	return c.fakeConn.Write(msgs)
}

// gate stalls the sockets of conns until the returned release is called; the
// test's cleanup releases them too, before the clients are unregistered, so a
// failed test does not hang on a stalled writer.
func gate(t *testing.T, conns ...*fakeConn) (release func()) {
	var once sync.Once
	for _, fc := range conns {
		fc.gate = make(chan struct{})
	}
	release = func() {
		once.Do(func() {
			for _, fc := range conns {
				close(fc.gate)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitLoop waits until cond holds; cond runs in the hub loop (through Each,
// so at least one client must be registered), where it may read loop state.
func waitLoop(t *testing.T, f *fixture, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, asked := false, false
		if err := f.h.Each(f.ctx, func(Conn) {
			if !asked {
				asked, ok = true, cond()
			}
		}); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriterSlotsBoundConcurrentBatches: with two writer slots and six clients
// whose sockets are stalled, only two batches are out at a time; the others
// wait their turn and every client still gets every line, in order.
func TestWriterSlotsBoundConcurrentBatches(t *testing.T) {
	cfg := roomy
	cfg.maxWriters, cfg.stallAfter = 2, time.Minute
	f := start(t, cfg)
	var n concurrency
	conns := make([]*fakeConn, 6)
	for i := range conns {
		conns[i] = newFakeConn()
		c := f.client(t, countedConn{conns[i], &n})
		f.do(t, c, protocol.OpSubscribe, "", "t")
		conns[i].waitLines(t, 1)
	}
	release := gate(t, conns...)
	f.publish(t, "t", "t", 0)
	f.publish(t, "t", "t", 1)
	// Two writers take the slots and stall; nobody else starts meanwhile.
	for deadline := time.Now().Add(5 * time.Second); n.cur.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches out, want 2", n.cur.Load())
		}
	}
	time.Sleep(20 * time.Millisecond)
	if got := n.cur.Load(); got != 2 {
		t.Fatalf("%d batches out with two slots", got)
	}
	// Let every write through, one at a time, until all have both records.
	deadline := time.Now().Add(5 * time.Second)
	for done := 0; done < len(conns); {
		done = 0
		for _, fc := range conns {
			if len(fc.snapshot()) >= 3 {
				done++
				continue
			}
			select {
			case fc.gate <- struct{}{}:
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
	for i, fc := range conns {
		if got := fc.snapshot(); got[1] != "t#0" || got[2] != "t#1" {
			t.Errorf("client %d lines = %q", i, got)
		}
	}
	release()
}

// TestStalledBatchFreesItsSlot: one writer slot, held by a client whose socket
// does not drain. After stallAfter its batch stops counting and the next
// client is served while the first is still stuck.
func TestStalledBatchFreesItsSlot(t *testing.T) {
	cfg := roomy
	cfg.maxWriters, cfg.stallAfter = 1, 20*time.Millisecond
	f := start(t, cfg)
	stuck, healthy := newFakeConn(), newFakeConn()
	cs, ch := f.client(t, stuck), f.client(t, healthy)
	f.do(t, cs, protocol.OpSubscribe, "", "t")
	stuck.waitLines(t, 1)
	release := gate(t, stuck)
	f.publish(t, "t", "t", 0) // stuck takes the only slot
	waitLoop(t, f, "stuck's record is out", func() bool { return f.h.seq >= 1 && cs.slot >= 0 && len(cs.pending) == 0 })
	// The reply needs a slot: it comes once the stalled batch stops counting.
	f.do(t, ch, protocol.OpSubscribe, "", "t")
	healthy.waitLines(t, 1)
	f.publish(t, "t", "t", 1)
	if got := healthy.waitLines(t, 2); got[1] != "t#1" {
		t.Fatalf("healthy lines = %q", got)
	}
	if got := stuck.snapshot(); len(got) != 1 {
		t.Fatalf("stuck client wrote %q while its socket was stalled", got)
	}
	release()
	if got := stuck.waitLines(t, 3); got[1] != "t#0" || got[2] != "t#1" {
		t.Fatalf("stuck lines after it drained = %q", got)
	}
}

// TestUnregisterEndsWriterParkedForSlot: a client whose writer finished a
// batch while others waited for the only slot parks at the end of the line;
// unregistering it ends that writer (Client.Wait returns) and the others
// still get their lines.
func TestUnregisterEndsWriterParkedForSlot(t *testing.T) {
	cfg := roomy
	cfg.maxWriters, cfg.stallAfter = 1, time.Minute
	f := start(t, cfg)
	a, b := newFakeConn(), newFakeConn()
	ca, cb := f.client(t, a), f.client(t, b)
	f.do(t, ca, protocol.OpSubscribe, "", "t")
	a.waitLines(t, 1)
	f.do(t, cb, protocol.OpSubscribe, "", "t")
	b.waitLines(t, 1)
	releaseA, releaseB := gate(t, a), gate(t, b)

	f.publish(t, "t", "t", 0) // a writes (gated), b waits for the slot
	waitLoop(t, f, "b waits for the slot", func() bool { return cb.queued })
	a.gate <- struct{}{} // a done; b takes the slot (gated)
	waitLoop(t, f, "b holds the slot", func() bool { return cb.slot >= 0 })
	f.publish(t, "t", "t", 1)
	waitLoop(t, f, "a waits for the slot", func() bool { return ca.queued })
	b.gate <- struct{}{} // b done with t#0; a takes the slot (gated), b's writer parks with t#1
	waitLoop(t, f, "b's writer parks", func() bool { return cb.waiting })

	if err := f.h.Unregister(context.Background(), cb); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cb.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("writer parked for a slot outlived Unregister")
	}
	if got := b.snapshot(); len(got) != 2 || got[1] != "t#0" {
		t.Fatalf("unregistered client's lines = %q", got)
	}
	releaseA()
	if got := a.waitLines(t, 3); got[1] != "t#0" || got[2] != "t#1" {
		t.Fatalf("a's lines = %q", got)
	}
	releaseB()
}
