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
type corkWriter struct {
	conn io.Writer  // the socket
	raw  net.Conn   // the same socket, for the uncork write deadline; nil in unit tests
	pool *sync.Pool // *[]byte of cap >= corkFlushBytes

	mu     sync.Mutex
	corked bool
	buf    *[]byte
}

// Write implements io.Writer: straight through, or into the cork. A corked write that fills
// the buffer writes it out here, inside coder/websocket's Write, whose context deadline
// bounds it (cancelling closes the connection under the write).
func (w *corkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		return w.conn.Write(p)
	}
	if w.buf == nil {
		w.buf = w.pool.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
	if len(*w.buf) >= corkFlushBytes {
		return len(p), w.flushLocked(0)
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
	if timeout > 0 && w.raw != nil {
		// Set and cleared around this write only: control frames written straight through
		// later must not inherit a deadline that has passed.
		_ = w.raw.SetWriteDeadline(time.Now().Add(timeout))
		defer func() { _ = w.raw.SetWriteDeadline(time.Time{}) }()
	}
	_, err := w.conn.Write(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
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
