package server

import (
	"io"
	"sync"
)

// corkFlushBytes bounds what one cork holds before it writes anyway.
const corkFlushBytes = 64 << 10

// corkWriter sits between coder/websocket's bufio.Writer and the socket.
// coder/websocket flushes after every frame, so N frames cost N write
// syscalls; while the connection's writer goroutine is writing a batch it
// "corks" the socket, frames collect in a pooled buffer, and "uncork" sends
// them in one syscall. Uncorked (idle, or control frames between batches) it
// writes straight through, and an idle connection holds no buffer.
//
// mu serialises the writer goroutine's uncork with control frames that other
// goroutines (pong, ping, close) write through coder/websocket; it is per
// connection and uncontended on the hot path.
type corkWriter struct {
	conn io.Writer  // the socket
	raw  io.Closer  // the same socket, for a forced close; nil in unit tests
	pool *sync.Pool // *[]byte

	mu     sync.Mutex
	corked bool
	buf    *[]byte
}

// Write implements io.Writer: straight through, or into the cork.
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
		return len(p), w.flushLocked()
	}
	return len(p), nil
}

// buffered returns how many bytes the cork holds.
func (w *corkWriter) buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf == nil {
		return 0
	}
	return len(*w.buf)
}

// cork starts collecting writes.
func (w *corkWriter) cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// uncork writes what was collected, in one syscall, and writes through again.
func (w *corkWriter) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	err := w.flushLocked()
	if w.buf != nil {
		if cap(*w.buf) <= 2*corkFlushBytes {
			w.pool.Put(w.buf)
		}
		w.buf = nil
	}
	return err
}

func (w *corkWriter) flushLocked() error {
	if w.buf == nil || len(*w.buf) == 0 {
		return nil
	}
	_, err := w.conn.Write(*w.buf)
	*w.buf = (*w.buf)[:0]
	return err
}
