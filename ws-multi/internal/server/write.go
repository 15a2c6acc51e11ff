// This file is duplicated in ws-single (internal/server/write.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// errWriteTimeout reports a socket write that outlived WS_WRITE_TIMEOUT.
var errWriteTimeout = errors.New("server: write timed out")

// Overflow implements hub.Conn: the client is past its queue limits and not
// draining them.
func (c *conn) Overflow() { c.closeWith(ReasonSlow) }

// Write implements hub.Conn; it runs on the hub goroutine that owns the client
// (ws-single's loop, or one of ws-multi's shards) and never waits for the
// socket. With batching, consecutive messages share a frame up to
// WS_BATCH_MAX_BYTES. The socket is corked meanwhile: the frames only land in
// memory and are offered to the socket in one non-blocking syscall, so they
// need no per-frame timer. What the socket does not take waits for Flush.
//
// A write is a chunk: once more than corkFlushBytes wait in the cork (the
// socket stopped taking them) it stops, and the rest of msgs stays in the
// client's queue, shared, instead of being copied into this client's cork.
// The cork is asked (waiting takes its lock) only once this write has put more
// than corkFlushBytes in it, and then after every further frame: a write of
// less than 64 KiB costs no extra lock, a bigger one one lock per frame past
// its first 64 KiB.
func (c *conn) Write(msgs []*protocol.Message) (hub.Written, bool, error) {
	var (
		err error
		w   hub.Written
	)
	c.cork.cork()
	for w.Lines < len(msgs) {
		n := 1
		if c.s.cfg.Batch {
			n = frameSpan(msgs[w.Lines:], c.s.cfg.BatchMaxBytes)
		}
		if n == 1 {
			err = c.writeFrame(msgs[w.Lines].Wire)
			w.Bytes += len(msgs[w.Lines].Wire)
		} else {
			bp := c.s.frames.Get().(*[]byte)
			*bp = appendFrame((*bp)[:0], msgs[w.Lines:w.Lines+n])
			err = c.writeFrame(*bp)
			w.Bytes += len(*bp)
			c.s.frames.Put(bp)
		}
		if err != nil {
			break
		}
		w.Lines += n
		w.Frames++
		if w.Bytes > corkFlushBytes && c.cork.waiting() > corkFlushBytes {
			break
		}
	}
	done, uerr := c.cork.tryUncork()
	if err == nil {
		err = uerr
	}
	if err != nil {
		return hub.Written{}, false, err
	}
	// Once per write, for its oldest record: per message would cost more than
	// the write on a big fan-out, and the oldest is the worst case.
	for _, msg := range msgs[:w.Lines] {
		if !msg.Time.IsZero() {
			w.First = msg.Time
			break
		}
	}
	return w, done, nil
}

// Flush implements hub.Conn; it runs on the client's flusher goroutine and
// writes what Write left over, under the write timeout: a reusable timer (a
// deadline context would allocate on every flush) that drops the socket when
// it fires, which ends the write.
func (c *conn) Flush() error {
	if c.writeTimer == nil {
		c.writeTimer = time.AfterFunc(c.s.cfg.WriteTimeout, c.writeStalled)
	} else {
		c.writeTimer.Reset(c.s.cfg.WriteTimeout)
	}
	err := c.cork.uncork(0)
	if !c.writeTimer.Stop() {
		return errWriteTimeout
	}
	return err
}

func (c *conn) writeFrame(p []byte) error {
	// Corked, this only copies: the connection's lifetime bounds it (any close
	// makes it return).
	return c.ws.Write(context.Background(), websocket.MessageText, p)
}

// writeStalled runs when a socket write outlives the write timeout: the
// connection is dropped, which makes the stalled write return.
func (c *conn) writeStalled() {
	if !c.goBackground() {
		return
	}
	defer c.bg.Done()
	c.setReason(ReasonWriteTimeout)
	c.dropSocket()
}

// frameSpan is how many of msgs (at least one) go into the next batched frame:
// as many as fit in maxBytes with one '\n' between them. A single message
// larger than maxBytes gets a frame of its own.
func frameSpan(msgs []*protocol.Message, maxBytes int) int {
	size := len(msgs[0].Wire)
	n := 1
	for n < len(msgs) && size+1+len(msgs[n].Wire) <= maxBytes {
		size += 1 + len(msgs[n].Wire)
		n++
	}
	return n
}

// appendFrame appends msgs joined by '\n' (no trailing newline) to dst.
func appendFrame(dst []byte, msgs []*protocol.Message) []byte {
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, m.Wire...)
	}
	return dst
}
