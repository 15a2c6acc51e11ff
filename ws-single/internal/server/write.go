package server

import (
	"context"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-single/internal/hub"
)

// errWriteTimeout reports a socket write that outlived WS_WRITE_TIMEOUT.
var errWriteTimeout = errors.New("server: write timed out")

// written is what one hub write put in the cork, counted once it is out.
type written struct {
	lines, frames, bytes int
	first                time.Time // the oldest record's timestamp; zero if none
}

// Write implements hub.Conn; it runs in the hub loop and never waits for the
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
func (c *conn) Write(msgs []*hub.Message) (int, bool, error) {
	var (
		err error
		w   written
	)
	c.cork.cork()
	for w.lines < len(msgs) {
		n := 1
		if c.s.cfg.Batch {
			n = frameSpan(msgs[w.lines:], c.s.cfg.BatchMaxBytes)
		}
		if n == 1 {
			err = c.writeFrame(msgs[w.lines].Wire)
			w.bytes += len(msgs[w.lines].Wire)
		} else {
			bp := c.s.frames.Get().(*[]byte)
			*bp = appendFrame((*bp)[:0], msgs[w.lines:w.lines+n])
			err = c.writeFrame(*bp)
			w.bytes += len(*bp)
			c.s.frames.Put(bp)
		}
		if err != nil {
			break
		}
		w.lines += n
		w.frames++
		if w.bytes > corkFlushBytes && c.cork.waiting() > corkFlushBytes {
			break
		}
	}
	done, uerr := c.cork.tryUncork()
	if err == nil {
		err = uerr
	}
	if err != nil {
		return 0, false, err
	}
	// Once per write, for its oldest record: per message would cost more than
	// the write on a big fan-out, and the oldest is the worst case.
	for _, msg := range msgs[:w.lines] {
		if !msg.Time.IsZero() {
			w.first = msg.Time
			break
		}
	}
	if !done {
		c.owed = w
		return w.lines, false, nil
	}
	c.count(w)
	return w.lines, true, nil
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
	if err != nil {
		return err
	}
	c.count(c.owed)
	c.owed = written{}
	return nil
}

// count adds a write that is out in full to the metrics; nothing of a write
// counts before the socket took all of it.
func (c *conn) count(w written) {
	m := c.s.m
	m.MessagesDelivered.Add(float64(w.lines))
	m.FramesWritten.Add(float64(w.frames))
	m.BytesWritten.Add(float64(w.bytes))
	if !w.first.IsZero() {
		m.DeliveryLatency.Observe(time.Since(w.first).Seconds())
	}
}

func (c *conn) writeFrame(p []byte) error {
	// Corked, this only copies: the connection's lifetime bounds it (any close
	// makes it return).
	return c.ws.Write(context.Background(), websocket.MessageText, p)
}
