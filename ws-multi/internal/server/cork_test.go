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

// TestCorkWriterBound: uncorked writes (control frames of other goroutines) that would leave
// more than the bound waiting fail, the error sticks, the client is cut as it happens and
// what waited is dropped; the hub's corked writes are bounded elsewhere (queue limits, chunks).
func TestCorkWriterBound(t *testing.T) {
	tests := []struct {
		name    string
		corked  bool
		writes  []int // sizes, in order
		wantErr bool
	}{
		{name: "within the bound", writes: []int{60, 40}},
		{name: "past the bound", writes: []int{60, 41}, wantErr: true},
		{name: "one write past the bound", writes: []int{101}, wantErr: true},
		{name: "corked writes are not bounded here", corked: true, writes: []int{60, 60, 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &fakeSocket{room: 0, open: make(chan struct{})}
			var cut []error
			w := fakeCork(s)
			w.limit = 100
			w.cut = func(err error) { cut = append(cut, err) }
			if tt.corked {
				w.cork()
			}
			var err error
			for _, n := range tt.writes {
				if _, err = w.Write(bytes.Repeat([]byte("p"), n)); err != nil {
					break
				}
			}
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("Write error = %v, want an error: %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if !errors.Is(err, errCorkFull) || len(cut) != 1 || !errors.Is(cut[0], errCorkFull) {
					t.Fatalf("error %v, cut %v; want errCorkFull for both, once", err, cut)
				}
				if _, err := w.Write([]byte("x")); !errors.Is(err, errCorkFull) {
					t.Fatalf("a later write = %v, want the same error", err)
				}
				w.mu.Lock()
				held := w.buf != nil
				w.mu.Unlock()
				if held {
					t.Fatal("a cut cork still holds its buffer")
				}
			} else if len(cut) != 0 {
				t.Fatalf("cut %v within the bound", cut)
			}
			close(s.open)
			w.wait()
		})
	}
}

// TestCorkWriterDrainDeadline: control frames left over for a peer that never reads are
// written by the background drain within the timeout; past it the socket is dropped and the
// client cut with the deadline error (write_timeout), instead of waiting forever.
func TestCorkWriterDrainDeadline(t *testing.T) {
	a, b := net.Pipe() // no non-blocking write: every uncorked byte goes to the drain
	defer b.Close()
	cut := make(chan error, 1)
	w := newCorkWriter(a, testPool(), 50*time.Millisecond, 1<<20, func(err error) { cut <- err })
	if _, err := w.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-cut:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut with %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the drain to a peer that never reads was not cut")
	}
	w.wait()
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Fatal("the socket is still open after the cut")
	}
}
