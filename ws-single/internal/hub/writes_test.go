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
		waitQueued(t, cf, n) // behind the reply being flushed
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
		waitQueued(t, c, 0)
		if got := testutil.ToFloat64(f.m.Subscriptions); got != 1 {
			t.Fatalf("ws_subscriptions = %v, want 1", got)
		}
		close(conn.gate)
		deadline := 0
		for testutil.ToFloat64(f.m.Subscriptions) != 0 {
			if deadline++; deadline > 5000 {
				t.Fatal("client still subscribed after its flush failed")
			}
			waitQueued(t, c, 0)
		}
		f.publish(t, "t", "t", 1)
		waitQueued(t, c, 0)
		if got := conn.snapshot(); len(got) != 0 {
			t.Fatalf("lines after a failed flush: %q", got)
		}
	})
}
