package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Conn is the part of a WebSocket connection the hub uses; the server's connections implement
// it. The shard writes a client's frames itself, between Cork and TryUncork, so none of
// these may wait for the socket there: corked, Write only copies (every frame, data or
// control, goes through the cork, so a control frame written by another goroutine never holds
// the connection's write lock while the socket is full).
type Conn interface {
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	Ping(ctx context.Context) error
	Close(code websocket.StatusCode, reason string) error
	CloseNow() error
	// Cork starts collecting frames: until TryUncork or Uncork, Write only copies.
	Cork()
	// TryUncork stops collecting and offers the socket what waits, in one syscall that does
	// not wait for it, and reports whether all of it went. What is left needs Uncork.
	TryUncork() (bool, error)
	// Uncork writes everything that waits, waiting for the socket; a socket that takes
	// nothing for timeout returns an error matching os.ErrDeadlineExceeded.
	Uncork(timeout time.Duration) error
	// Buffered returns how many bytes wait in the cork that the socket has not taken. The
	// shard asks only once a write has handed over chunkBytes, to stop handing more.
	Buffered() int
}

// Client is one connection as the hub sees it. The server's handler goroutine owns it: it
// calls Request/Reply while reading and Finish exactly once when its read loop ends.
type Client struct {
	id    uint64
	shard *shard
	conn  Conn

	// Owned by the shard goroutine (see doc.go, invariant 1).
	subs         map[string]int      // subscription (channel or "<topic>:*") -> index in its subscriber list
	removed      bool                // out of the shard's index
	gone         bool                // no more deliveries: cut, failed, unregistered
	dirty        bool                // in the shard's list of clients to write to
	flushing     bool                // a flusher finishes a hand-off the socket did not take at once
	pending      []*protocol.Message // queued, not yet written
	resliced     bool                // pending's front was cut off by a partial take (queue.go)
	pendingBytes int                 // bytes of pending
	inflight     int                 // messages of the hand-off being flushed
	inflightB    int                 // bytes of inflight
	owed         written             // the flushing hand-off's figures, counted once it is out
	pingSlot     uint8               // the ping slot it joined at registration
	// The slow rule's state (queue.go): when the hand-off being flushed started waiting
	// for its socket, and when the queue went past a limit (zero while it is not).
	flushSince time.Time
	overSince  time.Time
	synced     chan struct{} // a Sync waiting for the queue to empty; closed then

	// mu guards the lifecycle below; it is never taken on the broadcast path.
	mu      sync.Mutex
	pinging bool   // a ping goroutine is running
	closed  bool   // no more writes, writers or pings start; set once
	reason  Reason // why the client ended; set once, by Decide or with closed
	// wg counts the flusher, ping and closer goroutines. Pings and closers are added under mu
	// while !closed; the flusher is added by the shard, which starts none once it handled the
	// client's unregister, and Finish waits only after that.
	wg sync.WaitGroup
}

// ID returns the client's hub-wide id.
func (c *Client) ID() uint64 { return c.id }

// Shard returns the index of the shard that owns the client.
func (c *Client) Shard() int { return c.shard.index }

// Request hands a parsed request to the client's shard, which answers it through the
// client's send queue, after every message already queued. It blocks while the shard's
// control queue is full (back-pressure on a client, never on Kafka).
func (c *Client) Request(req protocol.Request) {
	c.shard.send(event{kind: evRequest, client: c, req: req})
}

// Reply queues a reply prepared by the caller (an error reply to an unparsable request),
// ordered after every message already queued, like Request.
func (c *Client) Reply(m *protocol.Message) {
	c.shard.send(event{kind: evReply, client: c, msg: m})
}

// Sync waits until every message queued for the client before the call (records, and the
// replies to the requests handed over before it) has been handed to its connection: it
// returns nil once the client has no pending message and no write in flight, or is gone
// (or the hub stopped), and ctx.Err() if ctx ends first. The server calls it before a
// rate-limit close, so the replies owed go out ahead of the close frame; one Sync at a time
// per client.
func (c *Client) Sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case c.shard.ctrl <- event{kind: evSync, client: c, synced: done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.shard.done:
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.shard.done:
		return nil
	}
}

// Decide records reason as why the client ends, unless a reason was recorded already, and
// closes nothing: the server decides rate_limit when the bucket runs dry, then waits (Sync)
// before it closes. A Kill meanwhile (write_timeout from a flusher, slow) still closes the
// socket its own way but does not change the reason; the first reason decided wins. It
// reports whether reason is the one recorded. Safe from any goroutine.
func (c *Client) Decide(reason Reason) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == ReasonNone {
		c.reason = reason
	}
	return c.reason == reason
}

// Kill ends the client for reason: no further batch is written, and the socket is closed
// with the reason's close frame on a goroutine of its own (a close handshake can take
// seconds). Only the first reason counts (a reason recorded by Decide included); later
// calls do nothing. Safe from any goroutine.
func (c *Client) Kill(reason Reason) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.reason == ReasonNone {
		c.reason = reason
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go c.closeConn(reason)
}

func (c *Client) closeConn(reason Reason) {
	defer c.wg.Done()
	if code, text, ok := reason.closeFrame(); ok {
		// Close returns once the peer answers or after the library's own timeouts; the
		// reader goroutine keeps reading meanwhile, which is what completes the handshake.
		_ = c.conn.Close(code, text)
		return
	}
	_ = c.conn.CloseNow()
}

// Finish ends the client after its read loop stopped: readReason is why the read loop ended
// and counts only if nothing else ended the client, or decided its reason, first. Finish takes the client out of its
// shard, waits for its writer, pings and close handshake, and returns the reason that won.
// The caller must not use the client afterwards.
func (c *Client) Finish(readReason Reason) Reason {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if c.reason == ReasonNone {
			c.reason = readReason
		}
		c.mu.Unlock()
		// Nobody closed the socket yet: the peer went away or the read failed.
		_ = c.conn.CloseNow()
	} else {
		c.mu.Unlock()
	}
	// Unregister first: the shard starts no flusher afterwards, so the wait below cannot
	// miss one.
	c.shard.call(event{kind: evUnregister, client: c})
	c.wg.Wait()
	return c.reason
}

// maxSpareCap bounds the queue slice a client keeps between bursts: a larger one, grown by a
// rare burst, goes back to the garbage collector instead of staying on an idle connection.
const maxSpareCap = 64

func reusable(s []*protocol.Message) []*protocol.Message {
	if cap(s) > maxSpareCap {
		return nil
	}
	return s[:0]
}

// startPing starts one ping goroutine unless one is running or the client closed. A pong
// that does not come back within timeout ends the client (ping_timeout).
func (c *Client) startPing(base context.Context, timeout time.Duration) {
	c.mu.Lock()
	if c.closed || c.pinging {
		c.mu.Unlock()
		return
	}
	c.pinging = true
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(base, timeout)
		err := c.conn.Ping(ctx)
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		c.mu.Lock()
		c.pinging = false
		c.mu.Unlock()
		if err != nil && timedOut {
			c.Kill(ReasonPingTimeout)
		}
	}()
}
