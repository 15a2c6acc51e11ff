package server

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// corkFlushBytes is how much a cork collects before it offers the socket what it holds
// (without waiting), so a large write does not sit in memory whole.
const corkFlushBytes = 64 << 10

// corkWriter sits between coder/websocket's bufio.Writer and the socket, and no Write through
// it ever waits for the socket. That is what lets the hub's shard goroutine write frames
// itself: coder/websocket serialises every frame (data, ping, pong, close) on one lock, and a
// control frame that blocked on a full socket under that lock would stall the whole shard.
//
// Corked (the hub writing a client's queue), frames collect in a pooled buffer and tryUncork offers
// them to the socket in one non-blocking syscall; uncork then writes whatever the socket did
// not take, waiting up to the timeout. Uncorked (control frames from other goroutines), a
// frame goes straight to the socket when nothing is waiting before it; a part the socket does
// not take waits in the buffer for a background drain goroutine. So bytes leave in the order
// they were written, one goroutine at a time writes to the socket, and an idle connection
// holds no buffer and no goroutine.
//
// Every socket write that waits has a deadline; the non-blocking ones need none. A write
// error sticks: every later Write returns it.
type corkWriter struct {
	sock    io.Writer                 // the socket, for writes that wait
	raw     net.Conn                  // the same socket, for deadlines; nil in unit tests
	try     func([]byte) (int, error) // non-blocking write; nil: the socket never takes bytes at once
	pool    *sync.Pool                // *[]byte of cap >= corkFlushBytes
	timeout time.Duration             // deadline of the background drain's writes; 0 = none

	mu       sync.Mutex
	idle     *sync.Cond // signalled when a write outside mu ends
	corked   bool
	flushing bool    // a goroutine writes taken bytes to the socket, outside mu
	draining bool    // the background drain goroutine runs
	buf      *[]byte // collected or left-over bytes, oldest first
	err      error   // the first socket error
	drains   sync.WaitGroup
}

// newCorkWriter returns the cork of an accepted socket.
func newCorkWriter(sock net.Conn, pool *sync.Pool, timeout time.Duration) *corkWriter {
	w := &corkWriter{sock: sock, raw: sock, try: nonBlockingWriter(sock), pool: pool, timeout: timeout}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// Write implements io.Writer; it never waits for the socket.
func (w *corkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if !w.corked && !w.flushing && !w.draining && w.empty() {
		n, err := w.tryLocked(p)
		if err != nil || n == len(p) {
			return n, err
		}
		w.appendLocked(p[n:])
		w.draining = true
		w.drains.Add(1)
		go w.drain()
		return len(p), nil
	}
	w.appendLocked(p)
	if w.corked && !w.flushing && !w.draining && len(*w.buf) >= corkFlushBytes {
		if err := w.offerLocked(); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// cork starts collecting writes.
func (w *corkWriter) cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// tryUncork stops collecting and offers the socket everything that waits, without waiting for
// it; it reports whether all of it went. What is left needs uncork.
func (w *corkWriter) tryUncork() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	if w.err != nil {
		return false, w.err
	}
	if w.flushing || w.draining {
		return false, nil // another goroutine is writing; uncork waits for it
	}
	if err := w.offerLocked(); err != nil {
		return false, err
	}
	if !w.empty() {
		return false, nil
	}
	w.releaseLocked()
	return true, nil
}

// uncork stops collecting and writes everything that waits, waiting for the socket; each
// socket write must complete within timeout (0: no limit), and a stalled one returns an error
// matching os.ErrDeadlineExceeded.
func (w *corkWriter) uncork(timeout time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	err := w.flushLocked(timeout)
	w.releaseLocked()
	return err
}

// wait waits for the background drain; call it once the socket is closed.
func (w *corkWriter) wait() { w.drains.Wait() }

// drain is the background goroutine that writes what an uncorked Write left over.
func (w *corkWriter) drain() {
	defer w.drains.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.flushLocked(w.timeout) // an error sticks in w.err
	w.draining = false
	w.releaseLocked()
	w.idle.Broadcast()
}

func (w *corkWriter) empty() bool { return w.buf == nil || len(*w.buf) == 0 }

func (w *corkWriter) appendLocked(p []byte) {
	if w.buf == nil {
		w.buf = w.pool.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
}

// tryLocked writes as much of p as the socket takes now.
func (w *corkWriter) tryLocked(p []byte) (int, error) {
	if w.try == nil {
		return 0, nil
	}
	n, err := w.try(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// offerLocked writes as much of the buffer as the socket takes now and keeps the rest.
func (w *corkWriter) offerLocked() error {
	if w.empty() {
		return nil
	}
	n, err := w.tryLocked(*w.buf)
	if n > 0 {
		*w.buf = (*w.buf)[:copy(*w.buf, (*w.buf)[n:])]
	}
	return err
}

// flushLocked writes the buffer until it is empty, waiting for the socket. mu is released
// around each socket write so that other goroutines can append meanwhile (they never write to
// the socket while flushing is set); a goroutine that finds another flushing waits for it and
// then writes what is left, so flushLocked returns only when every byte written so far is out.
func (w *corkWriter) flushLocked(timeout time.Duration) error {
	for {
		for w.flushing {
			w.idle.Wait()
		}
		if w.err != nil || w.empty() {
			break
		}
		b := w.buf
		w.buf = nil
		w.flushing = true
		if w.raw != nil && timeout > 0 {
			_ = w.raw.SetWriteDeadline(time.Now().Add(timeout))
		}
		w.mu.Unlock()
		_, err := w.sock.Write(*b)
		w.mu.Lock()
		w.flushing = false
		*b = (*b)[:0]
		if w.buf == nil {
			w.buf = b
		} else {
			w.put(b)
		}
		if err != nil && w.err == nil {
			w.err = err
		}
		w.idle.Broadcast()
	}
	if w.raw != nil && timeout > 0 && w.err == nil {
		// A deadline left behind would fail the next non-blocking write once it passed.
		_ = w.raw.SetWriteDeadline(time.Time{})
	}
	return w.err
}

// releaseLocked gives an empty buffer back to the pool, so an idle connection holds none.
func (w *corkWriter) releaseLocked() {
	if w.buf != nil && len(*w.buf) == 0 && !w.corked && !w.flushing {
		w.put(w.buf)
		w.buf = nil
	}
}

func (w *corkWriter) put(b *[]byte) {
	if cap(*b) <= 2*corkFlushBytes {
		*b = (*b)[:0]
		w.pool.Put(b)
	}
}

// corkedConn is an accepted connection whose frames the hub writes corked (hub.Conn).
type corkedConn struct {
	*websocket.Conn
	cork *corkWriter
}

// Cork implements hub.Conn.
func (c corkedConn) Cork() { c.cork.cork() }

// TryUncork implements hub.Conn.
func (c corkedConn) TryUncork() (bool, error) { return c.cork.tryUncork() }

// Uncork implements hub.Conn.
func (c corkedConn) Uncork(timeout time.Duration) error { return c.cork.uncork(timeout) }
