// This file is duplicated in ws-multi (internal/server/cork.go) on purpose: the variants share
// no library of ours; they may diverge.

package server

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// corkFlushBytes is how much a cork collects before it offers the socket what it holds
// (without waiting), so a large write does not sit in memory whole. It is also the chunk of a
// hub write: a write stops handing the socket frames once more than this waits (waiting).
const corkFlushBytes = 64 << 10

// corkKeepBytes is the largest buffer a cork gives back to the pool; a bigger one (a large
// frame, or control frames piled up for a socket that does not read) goes to the GC, so an
// idle connection's memory returns.
const corkKeepBytes = 2 * corkFlushBytes

// errCorkFull is the sticky error of a cork whose uncorked writes would leave more than its
// byte bound waiting for the socket: the client does not read what it is sent.
var errCorkFull = errors.New("server: more bytes wait for the socket than the client's queue allows")

// corkWriter sits between coder/websocket's bufio.Writer and the socket, and no Write through
// it ever waits for the socket. That is what lets the hub goroutine that owns a client
// (ws-single's loop, or one of ws-multi's shards) write frames itself: coder/websocket
// serialises every frame (data, ping, pong, close) on one lock, and a control frame that
// blocked on a full socket under that lock would stall that goroutine and every client it
// owns.
//
// Corked (the hub writing a client's queue), frames collect in a pooled buffer and tryUncork offers
// them to the socket in one non-blocking syscall; uncork then writes whatever the socket did
// not take, waiting up to the timeout. Uncorked (control frames from other goroutines), a
// frame goes straight to the socket when nothing is waiting before it; a part the socket does
// not take waits in the buffer for a background drain goroutine. So bytes leave in the order
// they were written, one goroutine at a time writes to the socket, and an idle connection
// holds no buffer and no goroutine.
//
// Every byte waiting for the socket is bounded. Corked writes are the hub's, bounded by the
// client's queue limits and by chunking (waiting). An uncorked write that would leave more
// than limit bytes waiting fails with errCorkFull. The background drain's socket writes have
// the timeout as deadline; the connection's write timer drops the socket under a flush
// (conn.Flush). When the cork cuts the client (errCorkFull, a drain past its deadline) it
// drops the socket, since no close frame can be written to it, drops what waits, and tells
// cut. A write error sticks: every later Write returns it.
type corkWriter struct {
	sock    io.Writer                 // the socket, for writes that wait
	raw     net.Conn                  // the same socket (under TLS, the TCP connection: socketOf), to drop it and for deadlines; nil in unit tests
	try     func([]byte) (int, error) // non-blocking write; nil: the socket never takes bytes at once
	pool    *sync.Pool                // *[]byte of cap >= corkFlushBytes
	timeout time.Duration             // deadline of the background drain's writes (WS_WRITE_TIMEOUT); 0 = none
	limit   int                       // most bytes an uncorked write may leave waiting (WS_SEND_QUEUE_BYTES); 0 = no bound
	cut     func(error)               // told, under mu, when the cork cuts the client; nil = nobody

	mu       sync.Mutex
	idle     *sync.Cond // signalled when a write outside mu ends
	corked   bool
	flushing bool    // a goroutine writes taken bytes to the socket, outside mu
	out      int     // the bytes that goroutine writes
	draining bool    // the background drain goroutine runs
	buf      *[]byte // collected or left-over bytes, oldest first
	err      error   // the first socket error
	drains   sync.WaitGroup

	// sent counts the bytes the socket has taken: a peer that reads, however slowly, moves it
	// (the ping's liveness test, ping.go).
	sent atomic.Int64
}

// newCorkWriter returns the cork of an accepted socket; see corkWriter for timeout, limit and
// cut.
func newCorkWriter(sock net.Conn, pool *sync.Pool, timeout time.Duration, limit int, cut func(error)) *corkWriter {
	w := &corkWriter{sock: sock, raw: socketOf(sock), try: nonBlockingWriter(sock), pool: pool, timeout: timeout, limit: limit, cut: cut}
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
		if w.overLocked(len(p) - n) {
			return n, w.failLocked(errCorkFull)
		}
		w.appendLocked(p[n:])
		w.draining = true
		w.drains.Add(1)
		go w.drain()
		return len(p), nil
	}
	if !w.corked && w.overLocked(len(p)) {
		return 0, w.failLocked(errCorkFull)
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

// waiting is how many bytes wait for the socket: collected, left over, or being written.
func (w *corkWriter) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waitingLocked()
}

func (w *corkWriter) waitingLocked() int {
	n := w.out
	if w.buf != nil {
		n += len(*w.buf)
	}
	return n
}

// overLocked reports whether n more bytes waiting would pass the bound.
func (w *corkWriter) overLocked(n int) bool {
	return w.limit > 0 && w.waitingLocked()+n > w.limit
}

// failLocked cuts the client: err sticks, cut is told, the socket is dropped (every blocked
// read and write on it returns) and what waits is dropped. It returns err. cut comes first:
// the reader sees the dropped socket at once, and the connection's reason must be cut's by
// then, not the reader's (the first reason wins).
func (w *corkWriter) failLocked(err error) error {
	if w.err == nil {
		w.err = err
	}
	if w.cut != nil {
		w.cut(err)
	}
	if w.raw != nil {
		_ = w.raw.Close()
	}
	if w.buf != nil { // a goroutine flushing holds its own buffer, outside buf
		w.put(w.buf)
		w.buf = nil
	}
	return err
}

// drain is the background goroutine that writes what an uncorked Write left over, each socket
// write within the timeout; past it the client is cut.
func (w *corkWriter) drain() {
	defer w.drains.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.flushLocked(w.timeout); errors.Is(err, os.ErrDeadlineExceeded) {
		_ = w.failLocked(err)
	}
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
	if n > 0 {
		w.sent.Add(int64(n))
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
		w.flushing, w.out = true, len(*b)
		if w.raw != nil && timeout > 0 {
			_ = w.raw.SetWriteDeadline(time.Now().Add(timeout))
		}
		w.mu.Unlock()
		n, err := w.sock.Write(*b)
		w.sent.Add(int64(n))
		w.mu.Lock()
		w.flushing, w.out = false, 0
		if w.buf == nil && cap(*b) <= corkKeepBytes {
			*b = (*b)[:0]
			w.buf = b
		} else {
			w.put(b)
		}
		if err != nil && w.err == nil {
			w.err = err
		}
		if w.err != nil && w.buf != nil {
			// Nothing more goes out: what waits is dropped now, not with the connection.
			w.put(w.buf)
			w.buf = nil
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

// put gives b back to the pool unless it grew past corkKeepBytes: that one goes to the GC.
func (w *corkWriter) put(b *[]byte) {
	if cap(*b) <= corkKeepBytes {
		*b = (*b)[:0]
		w.pool.Put(b)
	}
}
