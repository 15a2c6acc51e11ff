package server

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// corkFlushBytes bounds what one cork holds before it writes anyway.
const corkFlushBytes = 64 << 10

// corkWriter sits between coder/websocket's bufio.Writer and the socket. coder/websocket
// flushes after every frame, and with our 1 KiB write buffer a frame larger than the buffer
// leaves in two syscalls (the buffered header and first bytes, then the rest), so a batched
// frame cost two writes and N unbatched frames N or more. While the client's writer goroutine
// writes one hand-off the socket is corked: frames collect in a pooled buffer and uncork sends
// them in one syscall. Uncorked (idle, or control frames between hand-offs) it writes straight
// through, and an idle connection holds no buffer. Same design as ws-single's corkWriter.
//
// mu serialises the writer goroutine's cork and uncork with control frames that other
// goroutines (pong, ping, close) write through coder/websocket; it is per connection and
// uncontended on the hot path.
//
// Every socket write has a deadline (WS_WRITE_TIMEOUT), but setting one costs two runtime
// calls (set, then clear) per write, 5% of the server's CPU under fan-out. So the deadline is
// armed lazily: a write re-arms it only when less than three quarters of the timeout is left,
// and a stalled write fails after between 3/4 and all of the timeout.
type corkWriter struct {
	conn    io.Writer     // the socket
	raw     net.Conn      // the same socket, for write deadlines; nil in unit tests
	pool    *sync.Pool    // *[]byte of cap >= corkFlushBytes
	timeout time.Duration // deadline of writes outside uncork; 0 = none

	mu       sync.Mutex
	corked   bool
	buf      *[]byte
	deadline time.Time // the socket's write deadline; zero = none
}

// Write implements io.Writer: straight through, or into the cork. A corked write that fills
// the buffer writes it out here, inside coder/websocket's Write.
func (w *corkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		w.armLocked(w.timeout)
		return w.conn.Write(p)
	}
	if w.buf == nil {
		w.buf = w.pool.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
	if len(*w.buf) >= corkFlushBytes {
		return len(p), w.flushLocked(w.timeout)
	}
	return len(p), nil
}

// cork starts collecting writes.
func (w *corkWriter) cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// uncork writes what was collected in one syscall and writes through again. The write must
// complete within timeout (socket write deadline); a stalled one returns an error matching
// os.ErrDeadlineExceeded.
func (w *corkWriter) uncork(timeout time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	err := w.flushLocked(timeout)
	if w.buf != nil {
		if cap(*w.buf) <= 2*corkFlushBytes {
			w.pool.Put(w.buf)
		}
		w.buf = nil
	}
	return err
}

func (w *corkWriter) flushLocked(timeout time.Duration) error {
	if w.buf == nil || len(*w.buf) == 0 {
		return nil
	}
	w.armLocked(timeout)
	_, err := w.conn.Write(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}

// armLocked leaves the socket's write deadline between 3/4 of timeout and timeout away, or
// clears it when timeout is 0 (a deadline that passed must not cut a later write).
func (w *corkWriter) armLocked(timeout time.Duration) {
	if w.raw == nil {
		return
	}
	if timeout <= 0 {
		if !w.deadline.IsZero() {
			w.deadline = time.Time{}
			_ = w.raw.SetWriteDeadline(w.deadline)
		}
		return
	}
	now := time.Now()
	if w.deadline.Sub(now) >= timeout-timeout/4 {
		return
	}
	w.deadline = now.Add(timeout)
	_ = w.raw.SetWriteDeadline(w.deadline)
}

// corkedConn is an accepted connection whose socket the hub's writer can cork around a
// hand-off (hub.Corker).
type corkedConn struct {
	*websocket.Conn
	cork *corkWriter
}

// Cork implements hub.Corker.
func (c corkedConn) Cork() { c.cork.cork() }

// Uncork implements hub.Corker.
func (c corkedConn) Uncork(timeout time.Duration) error { return c.cork.uncork(timeout) }
