package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Conn is the part of a WebSocket connection the hub uses; *websocket.Conn implements it.
type Conn interface {
	Write(ctx context.Context, typ websocket.MessageType, p []byte) error
	Ping(ctx context.Context) error
	Close(code websocket.StatusCode, reason string) error
	CloseNow() error
}

// Corker is implemented by a Conn whose socket writes can be held back and sent together.
// The client's writer corks around each hand-off, so all its frames leave in one syscall
// instead of one or two per frame. While corked, Write only copies and cannot block on the
// socket; Uncork must send within timeout, and a stalled socket returns an error matching
// os.ErrDeadlineExceeded (the client ends as write_timeout).
type Corker interface {
	Cork()
	Uncork(timeout time.Duration) error
}

// Client is one connection as the hub sees it. The server's handler goroutine owns it: it
// calls Request/Reply while reading and Finish exactly once when its read loop ends.
type Client struct {
	id    uint64
	shard *shard
	conn  Conn

	// Owned by the shard goroutine (see doc.go, invariant 1).
	subs         map[string]int           // subscription (channel or "<topic>:*") -> index in its subscriber list
	removed      bool                     // out of the shard's index
	gone         bool                     // no more deliveries: cut, failed, unregistered
	pending      []*protocol.Message      // queued, not yet handed to the writer
	spare        []*protocol.Message      // the writer's last batch, cleared, reused
	pendingBytes int                      // bytes of pending
	inflight     int                      // handed to the writer and not yet reported
	inflightB    int                      // bytes of inflight
	writing      bool                     // a writer goroutine is running
	waiting      bool                     // its writer is parked for a writer slot (hand-off unanswered)
	queued       bool                     // in the shard's FIFO of clients waiting for a slot
	slot         int                      // index in the shard's batches out, -1 when none counts
	outAt        time.Duration            // when its counted batch went out, since shard.epoch
	batch        chan []*protocol.Message // shard -> writer: the next batch, or nil to end

	// mu guards the lifecycle below; it is never taken on the broadcast path.
	mu      sync.Mutex
	pinging bool   // a ping goroutine is running
	closed  bool   // no more writes, writers or pings start; set once
	reason  Reason // why the client ended; set once, with closed
	// wg counts the writer, ping and closer goroutines. Pings and closers are added under mu
	// while !closed; the writer is added by the shard, which starts none once it handled the
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

// Kill ends the client for reason: no further batch is written, and the socket is closed
// with the reason's close frame on a goroutine of its own (a close handshake can take
// seconds). Only the first reason counts; later calls do nothing. Safe from any goroutine.
func (c *Client) Kill(reason Reason) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.reason = reason
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

// isClosed reports whether the client was ended; the writer checks it before each batch.
func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Finish ends the client after its read loop stopped: readReason is why the read loop ended
// and counts only if nothing else ended the client first. Finish takes the client out of its
// shard, waits for its writer, pings and close handshake, and returns the reason that won.
// The caller must not use the client afterwards.
func (c *Client) Finish(readReason Reason) Reason {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.reason = readReason
		c.mu.Unlock()
		// Nobody closed the socket yet: the peer went away or the read failed.
		_ = c.conn.CloseNow()
	} else {
		c.mu.Unlock()
	}
	// Unregister first: the shard answers a writer parked for a slot and starts no new one,
	// so the wait below cannot miss a writer or wait for a slot.
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
