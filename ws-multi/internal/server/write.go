package server

import (
	"context"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Write implements hub.Conn; it runs on the client's shard goroutine and never waits for the
// socket. With batching, consecutive messages share a frame up to WS_BATCH_MAX_BYTES
// (batched frames are assembled in pooled buffers, shared by every connection). The socket
// is corked meanwhile: the frames only land in memory and are offered to the socket in one
// non-blocking syscall, so they need no per-frame deadline. What the socket does not take
// waits for Flush.
//
// A write is a chunk: once it has handed over corkFlushBytes and the cork holds more than
// corkFlushBytes that the socket did not take, it stops, and the rest of msgs stays in the
// client's queue, shared, instead of being copied into this client's cork (a write of a
// client that keeps up never asks the cork).
//
// Writing from the shard is safe only because no write on a connection ever waits for its
// socket under coder/websocket's per-connection write lock: the cork takes every frame,
// pings, pongs and close frames of other goroutines included (cork.go).
func (c *conn) Write(msgs []*protocol.Message) (w hub.Written, done bool, err error) {
	c.cork.cork()
	for i := 0; i < len(msgs); {
		n := 1
		if c.s.cfg.Batch {
			n = frameSpan(msgs[i:], c.s.cfg.BatchMaxBytes)
		}
		var p []byte
		var buf *[]byte
		if n == 1 {
			p = msgs[i].Wire
		} else {
			buf = c.s.frames.Get().(*[]byte)
			p = appendFrame((*buf)[:0], msgs[i:i+n])
		}
		// Corked, this only copies: the connection's lifetime bounds it.
		err = c.ws.Write(context.Background(), websocket.MessageText, p)
		if buf != nil {
			*buf = p[:0]
			c.s.frames.Put(buf)
		}
		if err != nil {
			break
		}
		if w.First.IsZero() {
			// Once per write, for its oldest record: the delivery latency's sample.
			for _, m := range msgs[i : i+n] {
				if m.Topic != "" {
					w.First = m.Time
					break
				}
			}
		}
		w.Frames++
		w.Bytes += len(p)
		w.Lines += n
		i += n
		if w.Bytes >= corkFlushBytes && i < len(msgs) && c.cork.waiting() > corkFlushBytes {
			break
		}
	}
	done, uerr := c.cork.tryUncork()
	if err == nil {
		err = uerr
	}
	if err != nil {
		// The socket failed (a background drain timed out, the peer reset) or the
		// connection closed (a close frame went out): the reader finishes the connection.
		if timedOut(err) {
			c.close(ReasonWriteTimeout)
		}
		return hub.Written{}, false, err
	}
	return w, done, nil
}

// Flush implements hub.Conn; it runs on the client's flusher goroutine and writes what Write
// left over, waiting for the socket up to WS_WRITE_TIMEOUT (the socket's write deadline). A
// socket that takes nothing for that long ends the connection (write_timeout); any other
// failure means the socket is gone (peer closed, reset, or closed under us), and the reader
// sees the same and finishes the connection with the right reason.
func (c *conn) Flush() error {
	err := c.cork.uncork(c.s.cfg.WriteTimeout)
	if timedOut(err) {
		c.close(ReasonWriteTimeout)
	}
	return err
}

// Overflow implements hub.Conn: the client is past its queue limits and not draining them.
// It closes the connection with 1008 "slow" on a goroutine of its own.
func (c *conn) Overflow() { c.close(ReasonSlow) }

// frameSpan is how many of msgs (at least one) go into the next batched frame: as many as
// fit in maxBytes joined by '\n'. A single message larger than maxBytes gets a frame of its
// own.
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
