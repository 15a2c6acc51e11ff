package hub

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// corkConn is a fakeConn that also implements Corker: frames written while corked are held
// and reach "the socket" (sent) in one piece at Uncork, like the server's corkWriter.
type corkConn struct {
	fakeConn
	cmu      sync.Mutex
	corked   bool
	held     []string
	sent     []string // one entry per socket write
	corks    int
	failWith error // Uncork returns it (a stalled socket)
}

func (c *corkConn) Write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	if err := c.fakeConn.Write(ctx, typ, p); err != nil {
		return err
	}
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.corked {
		c.held = append(c.held, string(p))
	} else {
		c.sent = append(c.sent, string(p))
	}
	return nil
}

func (c *corkConn) Cork() {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	c.corked = true
	c.corks++
}

func (c *corkConn) Uncork(time.Duration) error {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	c.corked = false
	if c.failWith != nil {
		c.held = nil
		return c.failWith
	}
	if len(c.held) > 0 {
		c.sent = append(c.sent, strings.Join(c.held, "|"))
		c.held = nil
	}
	return nil
}

func (c *corkConn) socketWrites() []string {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return append([]string(nil), c.sent...)
}

// TestCorkedHandOffIsOneSocketWrite: with batching off, a hand-off of several messages is
// several frames but one socket write, in order.
func TestCorkedHandOffIsOneSocketWrite(t *testing.T) {
	cfg := testConfig()
	cfg.Batch = false
	h, m := startHub(t, cfg)
	f := &corkConn{}
	f.stall = make(chan struct{})
	c := h.Register(f)
	c.Request(sub(protocol.OpSubscribe, "1", "t:k"))
	// The writer stalls on the reply's frame (corked), so the records pile up behind it.
	eventually(t, "writer started", func() bool {
		var writing bool
		inShard(c, func() { writing = c.writing })
		return writing
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
	close(f.stall)
	waitLines(t, &f.fakeConn, n+1)
	eventually(t, "uncorked", func() bool { return len(f.socketWrites()) == 2 })
	writes := f.socketWrites()
	if strings.Count(writes[1], "|") != n-1 {
		t.Fatalf("second socket write carries %q, want the %d records in one write", writes[1], n)
	}
	for i := range n {
		if !strings.Contains(strings.Split(writes[1], "|")[i], fmt.Sprintf(`"offset":%d`, i)) {
			t.Fatalf("record %d out of order in %q", i, writes[1])
		}
	}
	if got := testutil.ToFloat64(m.MessagesDelivered); got != n+1 {
		t.Errorf("delivered = %v, want %d", got, n+1)
	}
	c.Finish(ReasonClient)
}

// TestUncorkDeadlineEndsClient: a socket that does not take the corked bytes within the
// write timeout ends the client as write_timeout, and nothing counts as delivered.
func TestUncorkDeadlineEndsClient(t *testing.T) {
	h, m := startHub(t, testConfig())
	f := &corkConn{failWith: fmt.Errorf("write tcp: %w", os.ErrDeadlineExceeded)}
	c := h.Register(f)
	c.Request(protocol.Request{Op: protocol.OpPing})
	eventually(t, "write timeout close", func() bool { _, _, _, closed := f.snapshot(); return closed })
	if r := c.Finish(ReasonClient); r != ReasonWriteTimeout {
		t.Errorf("reason = %v, want write_timeout", r)
	}
	if got := testutil.ToFloat64(m.MessagesDelivered); got != 0 {
		t.Errorf("delivered = %v after a failed uncork, want 0", got)
	}
}
