// This file is duplicated in ws-single (internal/server/cork_test.go) on purpose: the variants share
// no library of ours; they may diverge.

package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSocket is a socket for corkWriter's logic: the non-blocking write takes at most room
// bytes; a blocking write waits until open is closed. Every write that took bytes is recorded.
type fakeSocket struct {
	mu     sync.Mutex
	room   int
	writes []string
	open   chan struct{}
}

func (s *fakeSocket) try(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(p), s.room)
	s.room -= n
	if n > 0 {
		s.writes = append(s.writes, string(p[:n]))
	}
	return n, nil
}

func (s *fakeSocket) Write(p []byte) (int, error) {
	<-s.open
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, string(p))
	return len(p), nil
}

func (s *fakeSocket) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.writes, "|")
}

func testPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, 16); return &b }}
}

func fakeCork(s *fakeSocket) *corkWriter {
	w := &corkWriter{sock: s, try: s.try, pool: testPool()}
	w.idle = sync.NewCond(&w.mu)
	return w
}

func TestCorkWriterCollectsAndWritesOnce(t *testing.T) {
	s := &fakeSocket{room: 1 << 20, open: make(chan struct{})}
	w := fakeCork(s)
	_, _ = w.Write([]byte("direct"))
	w.cork()
	_, _ = w.Write([]byte("a"))
	_, _ = w.Write([]byte("b"))
	if got := s.got(); got != "direct" {
		t.Fatalf("corked writes reached the socket: %q", got)
	}
	if done, err := w.tryUncork(); !done || err != nil {
		t.Fatalf("tryUncork = %v, %v with room, want true", done, err)
	}
	_, _ = w.Write([]byte("after"))
	if got := s.got(); got != "direct|ab|after" {
		t.Fatalf("socket writes = %q, want direct|ab|after", got)
	}
	if w.buf != nil {
		t.Fatal("an idle cork still holds a buffer")
	}

	// Past corkFlushBytes a cork offers the socket what it holds without waiting for uncork.
	s.writes = nil
	w.cork()
	big := bytes.Repeat([]byte("x"), corkFlushBytes)
	_, _ = w.Write(big)
	_, _ = w.Write([]byte("tail"))
	if len(s.writes) != 1 || len(s.writes[0]) != corkFlushBytes {
		t.Fatalf("after %d corked bytes: %d socket writes", corkFlushBytes, len(s.writes))
	}
	if done, _ := w.tryUncork(); !done || s.writes[1] != "tail" {
		t.Fatalf("tryUncork wrote %q", s.writes[1:])
	}
}

// TestCorkWriterLeftOverWaitsForUncork: what a full socket does not take stays, in order,
// with frames written meanwhile by other goroutines behind it, until uncork writes it.
func TestCorkWriterLeftOverWaitsForUncork(t *testing.T) {
	s := &fakeSocket{room: 3, open: make(chan struct{})}
	w := fakeCork(s)
	w.cork()
	_, _ = w.Write([]byte("hello"))
	if done, err := w.tryUncork(); done || err != nil {
		t.Fatalf("tryUncork = %v, %v with 3 bytes of room, want false", done, err)
	}
	// A pong from the reader: it must queue behind the left-over, not jump ahead or wait.
	if _, err := w.Write([]byte("PONG")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.uncork(time.Second) }()
	select {
	case err := <-done:
		t.Fatalf("uncork returned %v before the socket took anything", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(s.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.got(); got != "hel|loPONG" {
		t.Fatalf("socket writes = %q, want hel|loPONG", got)
	}
}

// TestCorkWriterDrainsLeftOverControlFrames: an uncorked write the socket does not take at
// once returns at once; a background drain writes it, and frames written meanwhile follow it.
func TestCorkWriterDrainsLeftOverControlFrames(t *testing.T) {
	s := &fakeSocket{room: 2, open: make(chan struct{})}
	w := fakeCork(s)
	start := time.Now()
	if _, err := w.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// The hub's write meanwhile: it cannot go out ahead of the ping's rest.
	w.cork()
	_, _ = w.Write([]byte("data"))
	if done, _ := w.tryUncork(); done {
		t.Fatal("tryUncork reported done while the drain holds bytes")
	}
	if time.Since(start) > time.Second {
		t.Fatal("writes waited for the socket")
	}
	close(s.open)
	if err := w.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	w.wait()
	if got := s.got(); got != "pi|ngdata" && got != "pi|ng|data" {
		t.Fatalf("socket writes = %q, want the ping's rest before the data", got)
	}
	if w.buf != nil || w.draining || w.flushing {
		t.Fatal("cork not idle after the drain")
	}
}

// TestCorkWriterUncorkDeadline: an uncork the peer does not read times out with
// os.ErrDeadlineExceeded and the error sticks; a flush that went out leaves no deadline behind.
func TestCorkWriterUncorkDeadline(t *testing.T) {
	a, b := net.Pipe() // net.Pipe has no non-blocking write: everything waits for the reader
	defer a.Close()
	defer b.Close()
	w := newCorkWriter(a, testPool(), time.Minute, 0, nil)
	w.cork()
	_, _ = w.Write([]byte("stuck"))
	err := w.uncork(20 * time.Millisecond) // nobody reads b
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("uncork = %v, want a deadline error", err)
	}
	if _, err := w.Write([]byte("later")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write after a failed flush = %v, want the same error", err)
	}

	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	w = newCorkWriter(c, testPool(), time.Minute, 0, nil)
	go func() { _, _ = io.Copy(io.Discard, d) }()
	w.cork()
	_, _ = w.Write([]byte("frame"))
	if err := w.uncork(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond) // past the flush's deadline
	w.cork()
	_, _ = w.Write([]byte("frame"))
	if err := w.uncork(time.Second); err != nil {
		t.Fatalf("a flush after an earlier flush's deadline passed: %v", err)
	}
}

// TestCorkWriterOnTCP runs the non-blocking write on a real socket: a peer that does not read
// fills the socket, tryUncork reports the rest left over at once, and uncork delivers every
// byte in order once the peer reads.
func TestCorkWriterOnTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	defer server.Close()
	w := newCorkWriter(server, testPool(), 5*time.Second, 0, nil)
	if w.try == nil {
		t.Fatal("no non-blocking write on a TCP socket")
	}
	// 32 MiB is more than loopback buffers take (they grow to a few MiB).
	payload := make([]byte, 32<<20)
	for i := range payload {
		payload[i] = byte(i % 251)
	}
	w.cork()
	for off := 0; off < len(payload); off += 1 << 16 {
		if _, err := w.Write(payload[off : off+1<<16]); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	done, err := w.tryUncork()
	if err != nil || done {
		t.Fatalf("tryUncork = %v, %v to a peer that does not read, want false", done, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("tryUncork took %v: it waited for the socket", el)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(payload))))
		got <- b
	}()
	if err := w.uncork(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, payload) {
		t.Fatalf("peer read %d bytes, not the %d written in order", len(b), len(payload))
	}
}

// failure returns w's sticky error.
func failure(w *corkWriter) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// TestCorkWriterBoundsUncorkedWrites: uncorked writes (control frames of other goroutines)
// that would leave more than the limit waiting fail, the error sticks, the socket is dropped,
// the buffer goes and cut is told; corked writes (the hub's, bounded by its queue) are not
// refused.
func TestCorkWriterBoundsUncorkedWrites(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe() // the socket takes nothing at once: every byte waits
	defer b.Close()
	var cuts []error
	w := newCorkWriter(a, testPool(), time.Minute, 100, func(err error) { cuts = append(cuts, err) })
	w.try = func([]byte) (int, error) { return 0, nil }
	pong := bytes.Repeat([]byte("p"), 40)
	for i := range 2 {
		// The first starts the drain, whose write waits on the pipe holding 40 bytes.
		if _, err := w.Write(pong); err != nil {
			t.Fatalf("pong %d: %v", i, err)
		}
	}
	if n := w.waiting(); n != 80 {
		t.Fatalf("waiting = %d, want 80", n)
	}
	if _, err := w.Write(pong); !errors.Is(err, errCorkFull) {
		t.Fatalf("a write past the limit = %v, want errCorkFull", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errCorkFull) {
		t.Fatalf("a later write = %v, want the sticky errCorkFull", err)
	}
	w.wait() // the drain ends: the socket was dropped under it
	if !errors.Is(failure(w), errCorkFull) || w.buf != nil || w.waiting() != 0 {
		t.Fatalf("after the overflow: failure %v, buffer held %v", failure(w), w.buf != nil)
	}
	if len(cuts) != 1 || !errors.Is(cuts[0], errCorkFull) {
		t.Errorf("cut told %v, want errCorkFull once", cuts)
	}

	// Corked, the hub's frames collect whatever the limit.
	s := &fakeSocket{room: 0, open: make(chan struct{})}
	c := fakeCork(s)
	c.limit = 10
	c.cork()
	if _, err := c.Write(bytes.Repeat([]byte("d"), 50)); err != nil {
		t.Fatalf("corked write past the limit: %v", err)
	}
	if done, err := c.tryUncork(); done || err != nil || c.waiting() != 50 {
		t.Fatalf("tryUncork = %v, %v, waiting %d", done, err, c.waiting())
	}
}

// TestCorkWriterDrainDeadline: the background drain of control frames waits at most the
// write timeout for a socket that takes nothing; then the error is a deadline error, it
// sticks, the socket is dropped and cut is told.
func TestCorkWriterDrainDeadline(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe() // nobody reads b
	defer b.Close()
	cut := make(chan error, 1)
	w := newCorkWriter(a, testPool(), 30*time.Millisecond, 0, func(err error) { cut <- err })
	if _, err := w.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	w.wait()
	if err := failure(w); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("failure after the drain timed out = %v, want a deadline error", err)
	}
	if err := <-cut; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("cut told %v, want the deadline error", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("socket write after the drain failed = %v, want the socket dropped", err)
	}
}
