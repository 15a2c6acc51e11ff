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
// instead of one or two per frame. Uncork must send within timeout; a stalled socket
// returns an error matching os.ErrDeadlineExceeded (the client ends as write_timeout).
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

	// subs maps each subscription (channel or "<topic>:*") to the client's index in that
	// channel's subscriber list. Owned by the shard goroutine only.
	subs map[string]int
	// removed is set by the shard when it dropped the client from its index. Shard only.
	removed bool

	// mu guards the send queue and lifecycle below. It is per client and held for O(1)
	// work, never across I/O; exactly two goroutines take it on the hot path: the client's
	// shard (enqueue) and the client's writer (take a batch). See doc.go.
	mu           sync.Mutex
	pending      []*protocol.Message
	pendingBytes int
	spare        []*protocol.Message // empty slice to swap in for pending; see takeBatch
	// inflight and inflightBytes size the batch the writer holds; the queue limits count it
	// with pending, so a client stuck on one huge write is cut as soon as one stuck on many
	// small ones (the same rule as ws-single).
	inflight      int
	inflightBytes int
	writing       bool   // a writer goroutine is running
	pinging       bool   // a ping goroutine is running
	broken        bool   // a write failed: queued messages are dropped until Finish
	closed        bool   // no more writes, writers or pings start; set once
	reason        Reason // why the client ended; set once, with closed
	// wg counts the writer, ping and closer goroutines. Add only happens under mu while
	// !closed, and Finish waits only after setting closed, so Add never races Wait.
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

// Kill ends the client for reason: it stops further writes and closes the socket with the
// reason's close frame on a goroutine of its own (a close handshake can take seconds). Only
// the first reason counts; later calls do nothing.
func (c *Client) Kill(reason Reason) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.reason = reason
	clear(c.pending)
	c.pending = nil
	c.pendingBytes = 0
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
// and counts only if nothing else ended the client first. Finish waits for the client's
// writer, pings and close handshake, takes the client out of its shard and returns the
// reason that won. The caller must not use the client afterwards.
func (c *Client) Finish(readReason Reason) Reason {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.reason = readReason
		clear(c.pending)
		c.pending = nil
		c.mu.Unlock()
		// Nobody closed the socket yet: the peer went away or the read failed.
		_ = c.conn.CloseNow()
	} else {
		c.mu.Unlock()
	}
	c.wg.Wait()
	c.shard.send(event{kind: evUnregister, client: c})
	return c.reason
}

// maxSpareCap bounds the queue slice a client keeps between bursts: a larger one, grown by a
// rare burst, goes back to the garbage collector instead of staying on an idle connection.
const maxSpareCap = 64

// enqueue appends m to the send queue and starts a writer when none runs. It returns false
// when the queue would pass its limits; the caller then kills the client as slow. Called by
// the shard goroutine only.
func (c *Client) enqueue(m *protocol.Message, maxMessages, maxBytes int) (ok bool) {
	c.mu.Lock()
	if c.closed || c.broken {
		c.mu.Unlock()
		return true
	}
	queued := len(c.pending) + c.inflight
	if queued > 0 && (queued >= maxMessages || c.pendingBytes+c.inflightBytes+len(m.Data) > maxBytes) {
		c.mu.Unlock()
		return false
	}
	c.pending = append(c.pending, m)
	c.pendingBytes += len(m.Data)
	start := !c.writing
	if start {
		c.writing = true
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if start {
		go c.shard.hub.writeLoop(c)
	}
	return true
}

// takeBatch swaps the whole pending queue for an empty slice and returns it. done is the
// batch the writer finished (or nil); its array is kept as the next empty slice, so a
// client's two queue slices are reused instead of reallocated every burst. When the queue is
// empty or the client closed, it marks the writer stopped and returns nil: the next enqueue
// starts a new writer.
func (c *Client) takeBatch(done []*protocol.Message) []*protocol.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if done != nil && c.spare == nil && cap(done) <= maxSpareCap {
		c.spare = done[:0]
	}
	if c.closed || len(c.pending) == 0 {
		c.writing = false
		c.inflight, c.inflightBytes = 0, 0
		return nil
	}
	batch := c.pending
	c.inflight, c.inflightBytes = len(batch), c.pendingBytes
	c.pending, c.spare = c.spare, nil
	c.pendingBytes = 0
	return batch
}

// markBroken records that the socket failed under the writer and stops the writer.
func (c *Client) markBroken() {
	c.mu.Lock()
	c.broken = true
	c.writing = false
	c.inflight, c.inflightBytes = 0, 0
	clear(c.pending)
	c.pending = nil
	c.pendingBytes = 0
	c.mu.Unlock()
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
